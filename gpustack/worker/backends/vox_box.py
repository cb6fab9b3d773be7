"""vox-box backend (speech-to-text / text-to-speech): `vox-box start --model PATH --data-dir DIR`."""

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

PROTECTED = ("--host", "--port", "--model")


def vox_box_argv(ctx: LaunchContext) -> list[str]:
    """`vox-box start --model P --data-dir D --host H --port P --device cuda:0|cpu`.

    The runtime exposes only the assigned GPU (CUDA_VISIBLE_DEVICES / device request), so it is cuda:0;
    a placement without an NVIDIA GPU runs on the CPU (`--device cpu`), as GPUStack's VoxBox does.
    """
    defaults = [
        "--model", ctx.model_path,
        "--data-dir", str(ctx.work_dir),
        "--host", ctx.host,
        "--port", str(ctx.port),
    ]  # fmt: skip
    on_gpu = ctx.gpu_indexes and ctx.gpu_vendor == "nvidia"
    defaults += ["--device", "cuda:0" if on_gpu else "cpu"]
    return ["vox-box", "start", *merge_args(defaults, ctx.backend_parameters, (), PROTECTED)]


@register("vox-box")
def build(ctx: LaunchContext) -> LaunchSpec:
    """argv for the `vox-box` on PATH, or inside ctx.image_name; health /v1/models."""
    return base_spec(ctx, vox_box_argv(ctx), health_path="/v1/models")
