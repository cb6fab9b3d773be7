"""NVIDIA GPU detection through NVML (the nvidia-ml-py package)."""

import logging
from typing import Any

from gpustack.schemas.workers import GPUDevice

logger = logging.getLogger(__name__)

try:
    import pynvml
except ImportError:  # pragma: no cover - nvidia-ml-py is a declared dependency
    pynvml = None


def _text(value: str | bytes) -> str:
    """NVML returned bytes in older nvidia-ml-py releases and str in newer ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _memory(handle: Any) -> tuple[int, int, int]:
    """(total, used, reserved) bytes. NVML's v2 memory info separates the driver's reserve from what
    processes use (nvidia-smi's "used"); the v1 call, for drivers without v2, counts it as used."""
    assert pynvml is not None
    try:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        return int(info.total), int(info.used), int(info.reserved)
    except (pynvml.NVMLError, AttributeError, TypeError) as exc:
        logger.debug("NVML v2 memory info unavailable (%s); using v1", exc)
    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return int(info.total), int(info.used), 0


def _read_device(index: int) -> GPUDevice:
    """Query one device; NVMLError from the identity/memory calls propagates to the caller."""
    assert pynvml is not None
    handle: Any = pynvml.nvmlDeviceGetHandleByIndex(index)
    total, used, reserved = _memory(handle)
    try:
        utilization = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError as exc:  # not supported on some devices (e.g. MIG instances)
        logger.debug("NVML utilization unavailable for GPU %d: %s", index, exc)
        utilization = 0.0
    try:
        temperature: float | None = float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    except pynvml.NVMLError as exc:
        logger.debug("NVML temperature unavailable for GPU %d: %s", index, exc)
        temperature = None
    power, limit = _power(handle, index)
    return GPUDevice(
        vendor="nvidia",
        index=index,
        name=_text(pynvml.nvmlDeviceGetName(handle)),
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
        memory_total=total,
        memory_used=used,
        memory_reserved=reserved,
        core_utilization=utilization,
        temperature=temperature,
        power_watts=power,
        power_limit_watts=limit,
    )


def _power(handle: Any, index: int) -> tuple[float | None, float | None]:
    """(draw, enforced limit) in watts where NVML has them (milliwatts there); None where it does not."""
    assert pynvml is not None
    out: list[float | None] = []
    for read in (pynvml.nvmlDeviceGetPowerUsage, pynvml.nvmlDeviceGetEnforcedPowerLimit):
        try:
            out.append(round(int(read(handle)) / 1000, 3))
        except pynvml.NVMLError as exc:  # not supported on some boards and on MIG instances
            logger.debug("NVML %s unavailable for GPU %d: %s", read.__name__, index, exc)
            out.append(None)
    return out[0], out[1]


def detect_nvidia() -> list[GPUDevice]:
    """Return the NVIDIA GPUs NVML sees, or [] when the library or driver is absent."""
    if pynvml is None:
        logger.info("nvidia-ml-py is not installed; no NVIDIA GPUs detected")
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        logger.debug("NVML unavailable (%s); no NVIDIA GPUs detected", exc)
        return []
    try:
        count = pynvml.nvmlDeviceGetCount()
        return [_read_device(index) for index in range(count)]
    except pynvml.NVMLError as exc:
        logger.info("NVML query failed (%s); reporting no NVIDIA GPUs", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            logger.debug("nvmlShutdown failed: %s", exc)
