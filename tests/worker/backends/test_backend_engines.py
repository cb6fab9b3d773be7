"""vLLM, SGLang and vox-box argv builders."""

import sys
from dataclasses import replace
from pathlib import Path

from gpustack.worker.backends.base import LaunchContext, get_backend

CTX = LaunchContext(
    instance_id=1,
    instance_name="llama-1",
    model_name="llama",
    model_path="/models/Llama-3-8B",
    host="0.0.0.0",
    port=40100,
    work_dir=Path("/data/work/llama-1"),
)


def test_vllm_argv() -> None:
    spec = get_backend("vllm")(replace(CTX, gpu_indexes=(0, 1)))
    assert spec.argv == (
        "vllm", "serve", "/models/Llama-3-8B", "--host", "0.0.0.0", "--port", "40100",
        "--served-model-name", "llama", "--tensor-parallel-size", "2",
    )  # fmt: skip
    assert spec.gpu_indexes == (0, 1) and spec.image is None and spec.mounts == ()


def test_vllm_parameters_and_image() -> None:
    ctx = replace(CTX, backend_parameters=("-tp=4", "--max-model-len 8192"), image_name="vllm/vllm-openai")
    spec = get_backend("vllm")(replace(ctx, gpu_indexes=(0,)))
    assert "--tensor-parallel-size" not in spec.argv
    assert spec.argv[-3:] == ("-tp=4", "--max-model-len", "8192")
    assert spec.image == "vllm/vllm-openai" and spec.mounts == ("/models/Llama-3-8B",)
    assert "--tensor-parallel-size" not in get_backend("vllm")(CTX).argv  # no GPUs: engine default


def test_sglang_argv() -> None:
    spec = get_backend("sglang")(replace(CTX, gpu_indexes=(3,), backend_parameters=("--tp 2",)))
    assert spec.argv == (
        sys.executable, "-m", "sglang.launch_server", "--model-path", "/models/Llama-3-8B",
        "--host", "0.0.0.0", "--port", "40100", "--served-model-name", "llama", "--tp", "2",
    )  # fmt: skip
    assert get_backend("sglang")(replace(CTX, image_name="lmsysorg/sglang")).argv[0] == "python3"


def test_vox_box_argv() -> None:
    spec = get_backend("vox-box")(replace(CTX, gpu_indexes=(2,)))
    assert spec.argv == (
        "vox-box", "start", "--model", "/models/Llama-3-8B", "--data-dir", "/data/work/llama-1",
        "--host", "0.0.0.0", "--port", "40100", "--device", "cuda:0",
    )  # fmt: skip
    assert "--device" not in get_backend("vox-box")(CTX).argv
