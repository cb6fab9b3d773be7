"""SGLang backend: `python -m sglang.launch_server` with its OpenAI-compatible server flags."""

import sys

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

ALIASES = (("--tp-size", "--tensor-parallel-size", "--tp"), ("--model-path", "--model"))
PROTECTED = ("--host", "--port", "--model-path")


def sglang_argv(ctx: LaunchContext) -> list[str]:
    """`python -m sglang.launch_server --model-path P --host H --port P --served-model-name N --tp-size K`.

    The worker's own interpreter runs it as a process; `python3` runs it inside an image.
    """
    python = "python3" if ctx.image_name else sys.executable
    defaults = [
        "--model-path", ctx.model_path,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--served-model-name", ctx.model_name,
    ]  # fmt: skip
    if ctx.gpu_indexes:
        defaults += ["--tp-size", str(len(ctx.gpu_indexes))]
    merged = merge_args(defaults, ctx.backend_parameters, ALIASES, PROTECTED)
    return [python, "-m", "sglang.launch_server", *merged]


@register("sglang")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for SGLang as a process, or inside ctx.image_name (e.g. lmsysorg/sglang)."""
    return base_spec(ctx, sglang_argv(ctx))
