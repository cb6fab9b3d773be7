"""Static GPU inventory: YAML parsing, size units and error messages."""

from pathlib import Path

import pytest

from gpustack.worker.detect.static import load_inventory, parse_size


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1024, 1024),
        ("24GiB", 24 * 2**30),
        ("80GB", 80 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5Gi", int(1.5 * 2**30)),
        ("2 TiB", 2 * 2**40),
        ("100", 100),
        ("16gib", 16 * 2**30),
        (0, 0),
    ],
)
def test_parse_size_units(value: object, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["lots", "12XB", "-1GiB", -5, True, None, [1]])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gpus.yaml"
    path.write_text(text)
    return path


def test_load_inventory_parses_devices(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
- name: NVIDIA A100-SXM4-80GB
  uuid: GPU-sim-0
  memory_total: 80GB
- index: 3
  name: NVIDIA RTX 4090
  memory_total: 24GiB
  memory_used: 512MiB
  temperature: 40
""",
    )
    devices = load_inventory(path)
    assert [d.index for d in devices] == [0, 3]
    assert all(d.simulated for d in devices)
    assert devices[0].memory_total == 80 * 10**9
    assert devices[0].memory_used == 0
    assert devices[0].vendor == "nvidia"
    assert devices[1].memory_total == 24 * 2**30
    assert devices[1].memory_used == 512 * 2**20
    assert devices[1].temperature == 40


def test_load_inventory_accepts_devices_key_and_forces_simulated(tmp_path: Path) -> None:
    path = _write(tmp_path, "devices:\n  - {index: 0, memory_total: 1024, simulated: false}\n")
    (device,) = load_inventory(path)
    assert device.simulated is True
    assert device.memory_total == 1024


def test_load_inventory_empty_file(tmp_path: Path) -> None:
    assert load_inventory(_write(tmp_path, "")) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- {index: 0}\n- {index: 1, memory_total: lots}\n", "device #1"),
        ("- {index: 0}\n- {index: 0}\n", "duplicate index 0"),
        ("- {index: 0, colour: red}\n", "unknown field(s) colour"),
        ("- just-a-string\n", "device #0"),
        ("- {index: zero}\n", "device #0"),
        ("name: not-a-list\n", "expected a list"),
        ("- [unclosed\n", "invalid YAML"),
    ],
)
def test_load_inventory_errors_name_file_and_item(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_inventory(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_load_inventory_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_inventory(tmp_path / "absent.yaml")


def test_ascend_npus_in_the_inventory(tmp_path: Path) -> None:
    """Ascend NPUs are listed with the vendor GPUStack reports for them (huawei)."""
    path = _write(
        tmp_path,
        "- name: Ascend 910B\n  vendor: huawei\n  memory_total: 64GiB\n- vendor: huawei\n  memory_total: 64GiB\n",
    )
    devices = load_inventory(path)
    assert [(d.index, d.vendor) for d in devices] == [(0, "huawei"), (1, "huawei")]
