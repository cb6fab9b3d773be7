"""Static GPU inventory loaded from a YAML file (simulated GPUs for testing and demos)."""

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gpustack.schemas.workers import GPUDevice

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_SIZE_FIELDS = ("memory_total", "memory_used")


def parse_size(value: Any) -> int:
    """Bytes from an int or a string like "24GiB", "80GB", "512MiB", "1.5Gi" (decimal vs binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value}")
        return value
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid size {value!r}: expected bytes or a string like '24GiB'")
    match = _SIZE_RE.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"invalid size {value!r}: expected a number with a unit like GiB, GB, MiB")
    return int(float(match.group(1)) * _UNITS[unit])


def _device(item: Any, position: int) -> GPUDevice:
    """Build one simulated device; `index` defaults to the item's position in the list."""
    if not isinstance(item, dict):
        raise ValueError(f"expected a mapping of GPUDevice fields, got {type(item).__name__}")
    unknown = sorted(set(item) - set(GPUDevice.model_fields))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(str, unknown))}")
    data = dict(item)
    data.setdefault("index", position)
    for key in _SIZE_FIELDS:
        if key in data:
            data[key] = parse_size(data[key])
    data["simulated"] = True
    return GPUDevice.model_validate(data)


def _items(raw: Any, path: Path) -> list[Any]:
    """Accept a top-level list, or a mapping with a `devices` list."""
    if raw is None:
        return []
    if isinstance(raw, dict) and set(raw) == {"devices"}:
        raw = raw["devices"]
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of GPU devices at the top level")
    return raw


def load_inventory(path: Path | str) -> list[GPUDevice]:
    """Read a YAML list of GPUDevice entries; every device is marked simulated=True.

    Raises FileNotFoundError for a missing file and ValueError (naming the file and the item index)
    for malformed YAML, bad entries or duplicate indexes.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    devices: list[GPUDevice] = []
    seen: set[int] = set()
    for position, item in enumerate(_items(raw, path)):
        try:
            device = _device(item, position)
        except (ValueError, ValidationError) as exc:  # ValidationError subclasses ValueError
            raise ValueError(f"{path}: device #{position}: {exc}") from exc
        if device.index in seen:
            raise ValueError(f"{path}: device #{position}: duplicate index {device.index}")
        seen.add(device.index)
        devices.append(device)
    return devices
