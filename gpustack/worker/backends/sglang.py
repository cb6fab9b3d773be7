"""SGLang backend: `python -m sglang.launch_server` with its OpenAI-compatible server flags."""

import sys

from gpustack.worker.backends._common import base_spec, default_context, fraction, merge_args, user_flags
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

ALIASES = (
    ("--tp-size", "--tensor-parallel-size", "--tp"),
    ("--pp-size", "--pipeline-parallel-size", "--pp"),
    ("--model-path", "--model"),
)
PROTECTED = ("--host", "--port", "--model-path")


def sglang_defaults(ctx: LaunchContext) -> list[str]:
    """Model, address, name, `--enable-metrics`, `--tp-size` from the GPU count (unless tp/pp was given),
    `--mem-fraction-static` from the claim and `--context-length` by the 8192 rule."""
    given = user_flags(ctx.backend_parameters, ALIASES)
    defaults = [
        "--model-path", ctx.model_path,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--served-model-name", ctx.model_name,
        "--enable-metrics",
    ]  # fmt: skip
    if ctx.gpu_indexes and not given & {"--tp-size", "--pp-size"}:
        defaults += ["--tp-size", str(len(ctx.gpu_indexes))]
    if ctx.vram_utilization and "--mem-fraction-static" not in given:
        defaults += ["--mem-fraction-static", fraction(ctx.vram_utilization)]
    if "--context-length" not in given and (context := default_context(ctx)):
        defaults += ["--context-length", str(context)]
    return defaults


def multinode_args(nnodes: int, node_rank: int, dist_init_addr: str) -> list[str]:
    """The flags that join one SGLang process to a multi-node group (used by distributed placements)."""
    return ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--dist-init-addr", dist_init_addr]


def sglang_argv(ctx: LaunchContext) -> list[str]:
    """`python -m sglang.launch_server --model-path P --host H --port P --served-model-name N ...`.

    The worker's own interpreter runs it as a process; `python3` runs it inside an image.
    """
    python = "python3" if ctx.image_name else sys.executable
    merged = merge_args(sglang_defaults(ctx), ctx.backend_parameters, ALIASES, PROTECTED)
    return [python, "-m", "sglang.launch_server", *merged]


@register("sglang")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for SGLang as a process, or inside ctx.image_name (e.g. lmsysorg/sglang); health /health."""
    return base_spec(ctx, sglang_argv(ctx), health_path="/health")
