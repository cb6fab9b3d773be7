"""detect_gpus source selection and the worker status snapshot."""

from pathlib import Path

import pytest

from gpustack.worker import detect
from gpustack.worker.detect import collect_status, detect_gpus


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "gpus.yaml"
    path.write_text("- {index: 0, name: sim, memory_total: 24GiB, memory_used: 1GiB}\n- {index: 1}\n")
    return path


def test_detect_gpus_prefers_inventory(inventory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_nvidia", lambda: pytest.fail("NVML must not be queried"))
    devices = detect_gpus(inventory)
    assert [d.index for d in devices] == [0, 1]
    assert all(d.simulated for d in devices)


def test_detect_gpus_falls_back_to_nvidia(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_nvidia", lambda: [])
    assert detect_gpus(None) == []


def test_collect_status_with_inventory(inventory: Path, tmp_path: Path) -> None:
    status = collect_status(inventory, tmp_path)
    assert status.simulated_gpus is True
    assert status.cpu.total >= 1
    assert 0.0 <= status.cpu.utilization_rate <= 100.0
    assert 0 < status.memory.used <= status.memory.total
    (disk,) = status.disks
    assert disk.path == str(tmp_path)
    assert 0 < disk.used <= disk.total
    assert [g.memory_used for g in status.gpu_devices] == [2**30, 0]
    assert status.gpu_devices[0].memory_total == 24 * 2**30


def test_collect_status_without_gpus_and_missing_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_nvidia", lambda: [])
    data_dir = tmp_path / "not" / "created"
    status = collect_status(None, data_dir)
    assert status.simulated_gpus is False
    assert status.gpu_devices == []
    assert status.disks[0].path == str(data_dir)
    assert status.disks[0].total > 0
    assert not data_dir.exists()
