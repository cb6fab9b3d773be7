"""vox-box backend (speech-to-text / text-to-speech): `vox-box start --model PATH --data-dir DIR`."""

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

PROTECTED = ("--host", "--port", "--model")


def vox_box_argv(ctx: LaunchContext) -> list[str]:
    """`vox-box start --model P --data-dir D --host H --port P [--device cuda:0]`.

    The runtime exposes only the assigned GPU (CUDA_VISIBLE_DEVICES / device request), so it is cuda:0;
    without GPUs vox-box defaults to the CPU.
    """
    defaults = [
        "--model", ctx.model_path,
        "--data-dir", str(ctx.work_dir),
        "--host", ctx.host,
        "--port", str(ctx.port),
    ]  # fmt: skip
    if ctx.gpu_indexes and ctx.gpu_vendor == "nvidia":
        defaults += ["--device", "cuda:0"]
    return ["vox-box", "start", *merge_args(defaults, ctx.backend_parameters, (), PROTECTED)]


@register("vox-box")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for the `vox-box` on PATH, or inside ctx.image_name."""
    return base_spec(ctx, vox_box_argv(ctx))
