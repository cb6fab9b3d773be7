"""launch_context: claim fields (context, memory fraction) and model fields reach the backend."""

from datetime import UTC, datetime
from pathlib import Path

from gpustack.schemas.instances import ModelInstancePublic
from gpustack.schemas.models import ModelPublic
from gpustack.worker.backends.vllm import vllm_argv
from gpustack.worker.engine import launch_context

NOW = datetime.now(UTC)


def _instance(claim: dict | None) -> ModelInstancePublic:
    return ModelInstancePublic.model_validate(
        {
            "id": 4, "name": "q-1", "model_id": 2, "worker_ip": "10.0.0.9", "gpu_indexes": [0, 1],
            "computed_resource_claim": claim, "created_at": NOW, "updated_at": NOW,
        }
    )  # fmt: skip


def _model() -> ModelPublic:
    return ModelPublic.model_validate(
        {
            "id": 2, "name": "q", "state": "pending", "ready_replicas": 0, "backend": "vllm",
            "categories": ["embedding"], "local_path": "/m", "created_at": NOW, "updated_at": NOW,
        }
    )  # fmt: skip


def test_claim_fields_reach_the_vllm_command() -> None:
    claim = {"vram": {"0": 1, "1": 1}, "context_size": 16384, "vram_utilization": 0.75}
    ctx = launch_context(_instance(claim), _model(), model_path="/m", port=40000, gpu_vendor="nvidia", work_dir=Path())
    assert (ctx.context_size, ctx.vram_utilization, ctx.worker_ip) == (16384, 0.75, "10.0.0.9")
    assert ctx.categories == ("embedding",)
    argv = vllm_argv(ctx)
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.75"
    assert argv[argv.index("--max-model-len") + 1] == "16384"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"


def test_no_claim_leaves_engine_defaults() -> None:
    ctx = launch_context(_instance(None), _model(), model_path="/m", port=40000, gpu_vendor="nvidia", work_dir=Path())
    assert ctx.vram_utilization is None and ctx.context_size is None
    assert "--gpu-memory-utilization" not in vllm_argv(ctx)
