"""Accelerator detection."""

import logging
from pathlib import Path

import psutil

from gpustack.schemas.workers import CPUInfo, DiskInfo, GPUDevice, MemoryInfo, WorkerStatus
from gpustack.worker.detect.nvidia import detect_nvidia
from gpustack.worker.detect.static import load_inventory

logger = logging.getLogger(__name__)

__all__ = ["collect_status", "detect_gpus", "detect_nvidia", "load_inventory"]


def detect_gpus(inventory_file: Path | None = None) -> list[GPUDevice]:
    """GPUs of this worker: the static inventory when given, else NVIDIA GPUs via NVML, else []."""
    if inventory_file is not None:
        return load_inventory(inventory_file)
    return detect_nvidia()


def _existing(path: Path) -> Path:
    """The path itself or its nearest existing ancestor (the data dir may not be created yet)."""
    path = path.expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def _disk(data_dir: Path) -> DiskInfo:
    target = _existing(data_dir)
    try:
        usage = psutil.disk_usage(str(target))
    except OSError as exc:
        logger.info("disk usage unavailable for %s: %s", target, exc)
        return DiskInfo(path=str(data_dir))
    return DiskInfo(path=str(data_dir), total=usage.total, used=usage.used)


def collect_status(inventory_file: Path | None, data_dir: Path) -> WorkerStatus:
    """Snapshot of CPU, memory, data-dir disk and GPUs for registration and heartbeats.

    cpu_percent(interval=None) never blocks: it reports usage since the previous call (0.0 the first time).
    Simulated GPUs report memory_used exactly as the inventory file says (default 0).
    """
    memory = psutil.virtual_memory()
    gpus = detect_gpus(inventory_file)
    return WorkerStatus(
        cpu=CPUInfo(total=psutil.cpu_count() or 0, utilization_rate=psutil.cpu_percent(interval=None)),
        memory=MemoryInfo(total=memory.total, used=memory.total - memory.available),
        gpu_devices=gpus,
        disks=[_disk(data_dir)],
        simulated_gpus=inventory_file is not None,
    )
