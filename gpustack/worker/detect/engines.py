"""What the worker's engines can do: whether the llama.cpp engine here was built with GPU offload."""

import logging
import shutil
import subprocess
import sys

from gpustack.schemas.workers import BackendInfo

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 60.0
_LLAMA_CPP_PROBE = (
    "import llama_cpp; print(llama_cpp.__version__, 'gpu' if llama_cpp.llama_supports_gpu_offload() else 'cpu')"
)


def parse_llama_cpp_probe(output: str) -> BackendInfo:
    """`0.3.36 gpu` -> a GPU-capable llama-cpp-python; anything unexpected -> unknown."""
    words = output.split()
    if len(words) != 2 or words[1] not in ("gpu", "cpu"):
        return BackendInfo(engine="llama-cpp-python (unknown build)")
    build = "GPU build" if words[1] == "gpu" else "CPU-only build"
    return BackendInfo(engine=f"llama-cpp-python {words[0]} ({build})", gpu_offload=words[1] == "gpu")


def probe_llama_cpp(python: str = sys.executable) -> BackendInfo | None:
    """Ask llama-cpp-python in a child process (so no GPU library is loaded into the worker)."""
    try:
        done = subprocess.run(
            [python, "-c", _LLAMA_CPP_PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("cannot probe llama-cpp-python: %s", exc)
        return BackendInfo(engine="llama-cpp-python (probe failed)")
    if done.returncode != 0:
        if "No module named 'llama_cpp'" in done.stderr:
            return None
        logger.warning("llama-cpp-python probe failed: %s", done.stderr.strip()[-500:])
        return BackendInfo(engine="llama-cpp-python (probe failed)")
    return parse_llama_cpp_probe(done.stdout)


def probe_backends() -> dict[str, BackendInfo]:
    """The llama-box backend's engine as the worker would launch it: the llama-box binary when on PATH
    (its build is not probed), else llama-cpp-python."""
    if binary := shutil.which("llama-box"):
        return {"llama-box": BackendInfo(engine=binary)}
    info = probe_llama_cpp()
    return {"llama-box": info} if info is not None else {}


def warn_cpu_only(backends: dict[str, BackendInfo]) -> None:
    """Say once, on a worker with real GPUs, which engines cannot use them."""
    for name, info in sorted(backends.items()):
        if info.gpu_offload is False:
            logger.warning(
                "backend %s: %s cannot use this worker's GPUs, so its models are placed on the CPU; "
                "install a GPU build (`make engine` builds one with CUDA where nvcc is found)",
                name,
                info.engine,
            )
