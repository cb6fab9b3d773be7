"""Which accelerators an engine may see: the GPUs it was placed on, and nothing for CPU placements."""

from gpustack.worker.backends.base import LaunchSpec

VISIBLE_DEVICES_VARS: dict[str, tuple[str, ...]] = {
    "nvidia": ("CUDA_VISIBLE_DEVICES",),
    "amd": ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"),
    "ascend": ("ASCEND_RT_VISIBLE_DEVICES",),
}
"""Each vendor's variables that limit the devices a process sees (an empty value hides all)."""

VENDOR_ALIASES = {"huawei": "ascend"}  # GPUStack reports Ascend NPUs with the vendor "huawei"


def process_device_env(spec: LaunchSpec) -> dict[str, str]:
    """For a local process: the placed GPUs of the spec's vendor by host index, every other device hidden.

    A CPU placement hides every GPU, so an engine built with CUDA (or ROCm, CANN) cannot allocate a
    context and compute buffers on a GPU the scheduler never gave it.
    """
    wanted = ",".join(str(i) for i in spec.gpu_indexes)
    placed = VENDOR_ALIASES.get(spec.gpu_vendor, spec.gpu_vendor)
    return {
        name: wanted if spec.gpu_indexes and vendor == placed else ""
        for vendor, names in VISIBLE_DEVICES_VARS.items()
        for name in names
    }


def container_device_env(spec: LaunchSpec) -> dict[str, str]:
    """For a container: GPUs come in through device requests (renumbered from 0), so only a CPU placement
    needs variables, hiding every device, including the toolkit's NVIDIA_VISIBLE_DEVICES=all of CUDA images."""
    if spec.gpu_indexes:
        return {}
    return {"NVIDIA_VISIBLE_DEVICES": "void", **process_device_env(spec)}


ASCEND_DEVICES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
ASCEND_DRIVER_MOUNTS = ("/usr/local/Ascend/driver", "/usr/local/dcmi", "/usr/local/bin/npu-smi")


def container_devices(spec: LaunchSpec) -> tuple[list[str], dict[str, str], tuple[str, ...]]:
    """Device nodes, env and read-only host mounts that give a container the placed AMD or Ascend GPUs
    (NVIDIA GPUs come through device requests instead).

    AMD: /dev/kfd and /dev/dri with HIP/ROCR_VISIBLE_DEVICES set to the host indexes (the container sees
    every render node). Ascend: only the placed /dev/davinciN nodes (the container numbers them from 0)
    plus the management nodes and the host's driver files.
    """
    vendor = VENDOR_ALIASES.get(spec.gpu_vendor, spec.gpu_vendor)
    if not spec.gpu_indexes or vendor not in ("amd", "ascend"):
        return [], {}, ()
    if vendor == "amd":
        wanted = ",".join(str(i) for i in spec.gpu_indexes)
        env = {"HIP_VISIBLE_DEVICES": wanted, "ROCR_VISIBLE_DEVICES": wanted}
        return ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"], env, ()
    nodes = [f"/dev/davinci{i}" for i in spec.gpu_indexes] + list(ASCEND_DEVICES)
    return [f"{n}:{n}:rwm" for n in nodes], {}, ASCEND_DRIVER_MOUNTS
