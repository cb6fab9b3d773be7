"""Golden argv/env/health tests of the vLLM, SGLang, vox-box, llama-box image and custom backends."""

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from gpustack.worker.backends.base import LaunchContext, get_backend

CTX = LaunchContext(
    instance_id=1,
    instance_name="llama-1",
    model_name="llama",
    model_path="MODEL",  # replaced by the case's model directory
    host="0.0.0.0",
    port=40100,
    work_dir=Path("/data/work/llama-1"),
)
LONG = {"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 32768}
SHORT = {"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096}
OMNI = {"architectures": ["Qwen2_5OmniModel"], "max_position_embeddings": 32768}
NESTED = {"architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"max_position_embeddings": 131072}}
HOST = ("--host", "0.0.0.0", "--port", "40100")


@dataclass(frozen=True)
class Case:
    """One golden case: the backend, what differs from CTX, config.json, and the exact result."""

    id: str
    backend: str
    argv: tuple[str, ...]  # "M" stands for the model directory
    changes: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    health: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    image: str | None = None


VLLM = ("vllm", "serve", "M", *HOST, "--served-model-name", "llama")
SGL = (sys.executable, "-m", "sglang.launch_server", "--model-path", "M", *HOST, "--served-model-name", "llama")
SGL_TAIL = ("--enable-metrics",)
VOX = ("vox-box", "start", "--model", "M", "--data-dir", "/data/work/llama-1", *HOST)

CASES = [
    Case("vllm-cpu-no-config", "vllm", VLLM),
    Case("vllm-tp-from-gpus", "vllm", (*VLLM, "--tensor-parallel-size", "2"), {"gpu_indexes": (0, 1)}),
    Case(
        "vllm-user-pp-no-auto-tp",
        "vllm",
        (*VLLM, "-pp", "2"),
        {"gpu_indexes": (0, 1), "backend_parameters": ("-pp 2",)},
    ),
    Case(
        "vllm-user-tp-replaces",
        "vllm",
        (*VLLM, "-tp=4"),
        {"gpu_indexes": (0,), "backend_parameters": ("-tp=4",)},
    ),
    Case("vllm-8192-rule", "vllm", (*VLLM, "--max-model-len", "8192"), config=LONG),
    Case("vllm-8192-rule-text-config", "vllm", (*VLLM, "--max-model-len", "8192"), config=NESTED),
    Case("vllm-short-context-untouched", "vllm", VLLM, config=SHORT),
    Case("vllm-omni-skips-8192", "vllm", VLLM, config=OMNI),
    Case("vllm-audio-category-skips-8192", "vllm", VLLM, {"categories": ("stt",)}, config=LONG),
    Case(
        "vllm-user-max-model-len",
        "vllm",
        (*VLLM, "--max-model-len=16384"),
        {"backend_parameters": ("--max-model-len=16384",)},
        config=LONG,
    ),
    Case("vllm-claim-context", "vllm", (*VLLM, "--max-model-len", "4096"), {"context_size": 4096}, config=LONG),
    Case(
        "vllm-claim-memory-fraction",
        "vllm",
        (*VLLM, "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.85"),
        {"gpu_indexes": (3,), "vram_utilization": 0.85},
    ),
    Case(
        "vllm-user-memory-fraction-wins",
        "vllm",
        (*VLLM, "--gpu-memory-utilization", "0.5"),
        {"vram_utilization": 0.85, "backend_parameters": ("--gpu-memory-utilization 0.5",)},
    ),
    Case(
        "vllm-embedding",
        "vllm",
        (*VLLM, "--runner", "pooling", "--convert", "embed"),
        {"categories": ("embedding",)},
    ),
    Case(
        "vllm-reranker",
        "vllm",
        (*VLLM, "--runner", "pooling", "--convert", "classify"),
        {"categories": ("reranker",)},
    ),
    Case(
        "vllm-user-task-wins",
        "vllm",
        (*VLLM, "--task", "embed"),
        {"categories": ("embedding",), "backend_parameters": ("--task embed",)},
    ),
    Case(
        "vllm-env-and-image",
        "vllm",
        VLLM,
        {"env": {"HF_HUB_OFFLINE": "1"}, "image_name": "vllm/vllm-openai:v0.11.0"},
        env={"HF_HUB_OFFLINE": "1"},
        image="vllm/vllm-openai:v0.11.0",
    ),
    Case("sglang-cpu", "sglang", (*SGL, *SGL_TAIL)),
    Case("sglang-tp-from-gpus", "sglang", (*SGL, *SGL_TAIL, "--tp-size", "3"), {"gpu_indexes": (0, 1, 2)}),
    Case(
        "sglang-user-tp-alias",
        "sglang",
        (*SGL, *SGL_TAIL, "--tp", "2"),
        {"gpu_indexes": (3,), "backend_parameters": ("--tp 2",)},
    ),
    Case(
        "sglang-user-pp-no-auto-tp",
        "sglang",
        (*SGL, *SGL_TAIL, "--pp-size", "2"),
        {"gpu_indexes": (0, 1), "backend_parameters": ("--pp-size 2",)},
    ),
    Case(
        "sglang-claim-fraction-and-context",
        "sglang",
        (*SGL, *SGL_TAIL, "--tp-size", "1", "--mem-fraction-static", "0.8", "--context-length", "8192"),
        {"gpu_indexes": (0,), "vram_utilization": 0.8},
        config=LONG,
    ),
    Case(
        "sglang-user-context",
        "sglang",
        (*SGL, *SGL_TAIL, "--context-length", "2048"),
        {"backend_parameters": ("--context-length", "2048")},
        config=LONG,
    ),
    Case("vox-box-gpu", "vox-box", (*VOX, "--device", "cuda:0"), {"gpu_indexes": (2,)}, health="/v1/models"),
    Case("vox-box-cpu", "vox-box", (*VOX, "--device", "cpu"), health="/v1/models"),
    Case(
        "vox-box-amd-gpu-runs-on-cpu",
        "vox-box",
        (*VOX, "--device", "cpu"),
        {"gpu_indexes": (0,), "gpu_vendor": "amd"},
        health="/v1/models",
    ),
    Case(
        "llama-box-image",
        "llama-box",
        (
            "llama-box",
            *HOST,
            "-m",
            "M",
            "--alias",
            "llama",
            "-ngl",
            "999",
            "--ctx-size",
            "8192",
            "--embeddings",
            "--tensor-split",
            "1,1",
        ),  # fmt: skip
        {"gpu_indexes": (0, 1), "image_name": "gpustack/llama-box:cuda"},
        health="/v1/models",
        image="gpustack/llama-box:cuda",
    ),
    Case(
        "llama-box-image-cpu-offload-and-rpc",
        "llama-box",
        (
            "llama-box",
            *HOST,
            "-m",
            "M",
            "--alias",
            "llama",
            "-ngl",
            "20",
            "--ctx-size",
            "4096",
            "--embeddings",
            "--rpc",
            "10.0.0.2:50052,10.0.0.3:50052",
        ),  # fmt: skip
        {
            "gpu_indexes": (0,),
            "offload_layers": 20,
            "total_layers": 33,
            "context_size": 4096,
            "rpc_servers": ("10.0.0.2:50052", "10.0.0.3:50052"),
            "image_name": "gpustack/llama-box:cuda",
        },
        health="/v1/models",
        image="gpustack/llama-box:cuda",
    ),
    Case(
        "custom-template-placeholders",
        "custom",
        ("my-engine", "M", "--port", "40100", "--bind", "10.1.2.3", "--name", "llama", "--gpus", "1,3", "-n", "2"),
        {
            "run_command": "my-engine {{model_path}} --port {{port}} --bind {{worker_ip}} --name {{ model_name }} "
            "--gpus {{gpu_indexes}} -n {{gpu_count}}",
            "worker_ip": "10.1.2.3",
            "gpu_indexes": (1, 3),
        },
        health="/v1/models",
    ),
    Case(
        "custom-health-from-catalog",
        "custom",
        ("serve", "M"),
        {"run_command": "serve {{model_path}}", "health_path": "/ping"},
        health="/ping",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_launch_spec(case: Case, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    if case.config is not None:
        (model_dir / "config.json").write_text(json.dumps(case.config))
    ctx = replace(CTX, model_path=str(model_dir), **case.changes)
    spec = get_backend(case.backend)(ctx)
    assert spec.argv == tuple(str(model_dir) if token == "M" else token for token in case.argv)
    assert spec.env == case.env
    assert spec.health_path == case.health
    assert spec.image == case.image
    assert spec.gpu_indexes == ctx.gpu_indexes and spec.port == 40100


def test_image_mounts_the_model_directory(tmp_path: Path) -> None:
    spec = get_backend("vllm")(replace(CTX, model_path=str(tmp_path), image_name="vllm/vllm-openai"))
    assert spec.mounts == (str(tmp_path),)
    assert get_backend("vllm")(replace(CTX, model_path=str(tmp_path))).mounts == ()


def test_sglang_in_an_image_uses_python3(tmp_path: Path) -> None:
    assert get_backend("sglang")(replace(CTX, model_path=str(tmp_path), image_name="lmsysorg/sglang")).argv[0] == (
        "python3"
    )


def test_sglang_multinode_args() -> None:
    from gpustack.worker.backends.sglang import multinode_args

    assert multinode_args(2, 1, "10.0.0.1:5000") == [
        "--nnodes", "2", "--node-rank", "1", "--dist-init-addr", "10.0.0.1:5000",
    ]  # fmt: skip
