"""vLLM backend: `vllm serve MODEL` with the OpenAI-compatible server flags."""

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

ALIASES = (("--tensor-parallel-size", "-tp"), ("--served-model-name",))
PROTECTED = ("--host", "--port")


def vllm_argv(ctx: LaunchContext) -> list[str]:
    """`vllm serve PATH --host H --port P --served-model-name NAME [--tensor-parallel-size N]`."""
    defaults = ["--host", ctx.host, "--port", str(ctx.port), "--served-model-name", ctx.model_name]
    if ctx.gpu_indexes:
        defaults += ["--tensor-parallel-size", str(len(ctx.gpu_indexes))]
    merged = merge_args(defaults, ctx.backend_parameters, ALIASES, PROTECTED)
    return ["vllm", "serve", ctx.model_path, *merged]


@register("vllm")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for the `vllm` on PATH, or inside ctx.image_name (e.g. vllm/vllm-openai)."""
    return base_spec(ctx, vllm_argv(ctx))
