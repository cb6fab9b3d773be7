"""Static GPU inventory loaded from a YAML file (simulated GPUs for testing and demos)."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gpustack.core.sizes import parse_size
from gpustack.schemas.workers import GPUDevice

__all__ = ["load_inventory", "parse_size"]

_SIZE_FIELDS = ("memory_total", "memory_used", "memory_reserved")


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
