"""vLLM backend: `vllm serve MODEL` with the OpenAI-compatible server flags GPUStack users know."""

from gpustack.worker.backends._common import base_spec, default_context, fraction, merge_args, user_flags
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

ALIASES = (
    ("--tensor-parallel-size", "-tp"),
    ("--pipeline-parallel-size", "-pp"),
    ("--data-parallel-size", "-dp"),
    ("--served-model-name",),
)
PROTECTED = ("--host", "--port")
PARALLEL_FLAGS = {"--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size"}
# Pooling models: the runner and the conversion vLLM (>= 0.10) uses for /v1/embeddings and /v1/rerank.
TASK_FLAGS = {
    "embedding": ("--runner", "pooling", "--convert", "embed"),
    "reranker": ("--runner", "pooling", "--convert", "classify"),
}


def _task_flags(ctx: LaunchContext, given: set[str]) -> list[str]:
    if given & {"--runner", "--convert", "--task"}:
        return []
    for category, flags in TASK_FLAGS.items():
        if category in ctx.categories:
            return list(flags)
    return []


def vllm_defaults(ctx: LaunchContext) -> list[str]:
    """The flags the worker adds before the user's: tensor parallel from the GPU count (unless the user set
    tp/pp/dp), the claim's memory fraction, the context length rule and the pooling task flags."""
    given = user_flags(ctx.backend_parameters, ALIASES)
    defaults = ["--host", ctx.host, "--port", str(ctx.port), "--served-model-name", ctx.model_name]
    if ctx.gpu_indexes and not given & PARALLEL_FLAGS:
        defaults += ["--tensor-parallel-size", str(len(ctx.gpu_indexes))]
    if ctx.vram_utilization and "--gpu-memory-utilization" not in given:
        defaults += ["--gpu-memory-utilization", fraction(ctx.vram_utilization)]
    if "--max-model-len" not in given and (context := default_context(ctx)):
        defaults += ["--max-model-len", str(context)]
    return defaults + _task_flags(ctx, given)


def vllm_argv(ctx: LaunchContext) -> list[str]:
    """`vllm serve PATH --host H --port P --served-model-name NAME [...defaults] [...user parameters]`."""
    merged = merge_args(vllm_defaults(ctx), ctx.backend_parameters, ALIASES, PROTECTED)
    return ["vllm", "serve", ctx.model_path, *merged]


@register("vllm")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for the `vllm` on PATH, or inside ctx.image_name (e.g. vllm/vllm-openai); health /health."""
    return base_spec(ctx, vllm_argv(ctx), health_path="/health")
