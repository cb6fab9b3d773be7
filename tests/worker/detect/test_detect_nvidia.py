"""NVIDIA detection: the real NVML path on this machine and the device mapping against a fake NVML."""

from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gpustack.worker.detect import nvidia
from gpustack.worker.detect.nvidia import detect_nvidia


def _nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_nvml_works(), reason="NVML is available here; the no-GPU path cannot be observed")
def test_detect_nvidia_without_driver_returns_empty() -> None:
    assert detect_nvidia() == []


class FakeNVML:
    """Just the NVML calls detect_nvidia uses, with two devices."""

    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(self) -> None:
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> Any:
        return b"NVIDIA A100" if handle == 0 else "NVIDIA H100"

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{handle}"

    nvmlMemory_v2 = pynvml.nvmlMemory_v2

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        """Device 0 has a v2-capable driver (used excludes the 480 MiB reserve); device 1 only v1."""
        if version is None:
            return SimpleNamespace(total=80 * 2**30, used=handle * 2**30 + 480 * 2**20, free=0)
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return SimpleNamespace(total=80 * 2**30, used=handle * 2**30, reserved=480 * 2**20, free=0)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=37, memory=5)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 212_345  # milliwatts

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 400_000

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 55


def test_detect_nvidia_maps_nvml_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNVML()
    monkeypatch.setattr(nvidia, "pynvml", fake)
    first, second = detect_nvidia()
    assert (first.index, first.name, first.uuid) == (0, "NVIDIA A100", "GPU-0")
    # v2: used as nvidia-smi shows it, the driver's reserve apart
    assert (first.memory_total, first.memory_used, first.memory_reserved) == (80 * 2**30, 0, 480 * 2**20)
    assert (first.core_utilization, first.temperature) == (37.0, 55.0)
    assert (first.power_watts, first.power_limit_watts) == (212.345, 400.0)
    assert not first.simulated and first.vendor == "nvidia"
    # v1 only: the reserve stays inside "used" (never less than what is really taken)
    assert (second.name, second.memory_used, second.memory_reserved) == ("NVIDIA H100", 2**30 + 480 * 2**20, 0)
    assert (second.core_utilization, second.temperature) == (0.0, None)
    assert (second.power_watts, second.power_limit_watts) == (None, None)  # not supported: not made up
    assert fake.calls == ["init", "shutdown"]


def test_detect_nvidia_query_failure_returns_empty_and_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNVML()

    def broken(index: int) -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(fake, "nvmlDeviceGetHandleByIndex", broken)
    monkeypatch.setattr(nvidia, "pynvml", fake)
    assert detect_nvidia() == []
    assert fake.calls == ["init", "shutdown"]


def test_detect_nvidia_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia, "pynvml", None)
    assert detect_nvidia() == []
