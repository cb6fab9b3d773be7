"""Custom backend: a user-supplied run_command template and/or container image."""

import re
import shlex

from gpustack.worker.backends._common import base_spec, normalize_params
from gpustack.worker.backends.base import LaunchContext, LaunchSpec, register

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(ctx: LaunchContext) -> dict[str, str]:
    """Values for {{model_path}}, {{port}}, {{model_name}}, {{host}}, {{worker_ip}} and the GPU
    placeholders {{gpu_indexes}} ("0,1"), {{gpu_count}} and {{gpu_vendor}}."""
    return {
        "model_path": ctx.model_path,
        "port": str(ctx.port),
        "model_name": ctx.model_name,
        "host": ctx.host,
        "worker_ip": ctx.worker_ip or ctx.host,
        "gpu_indexes": ",".join(str(i) for i in ctx.gpu_indexes),
        "gpu_count": str(len(ctx.gpu_indexes)),
        "gpu_vendor": ctx.gpu_vendor,
    }


def render(token: str, values: dict[str, str]) -> str:
    """Substitute `{{ name }}` placeholders in one token; ValueError for an unknown name."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join("{{" + key + "}}" for key in values)
            raise ValueError(f"unknown placeholder {match.group(0)!r} in run_command (known: {known})")
        return values[name]

    return _PLACEHOLDER.sub(sub, token)


def custom_argv(ctx: LaunchContext) -> list[str]:
    """shlex-split the template first, then substitute per token (paths with spaces stay one token);
    backend_parameters (placeholders allowed) are appended."""
    values = placeholders(ctx)
    template = _PLACEHOLDER.sub(r"{{\1}}", ctx.run_command or "")  # "{{ port }}" must not be split
    tokens = shlex.split(template) + normalize_params(ctx.backend_parameters)
    return [render(token, values) for token in tokens]


@register("custom")
def build(ctx: LaunchContext) -> LaunchSpec:
    """run_command → argv (as a process, or replacing the image's entrypoint when image_name is set);
    image_name without run_command → the image's own entrypoint, with backend_parameters as its CMD."""
    run_command = (ctx.run_command or "").strip()
    if not run_command and not ctx.image_name:
        raise ValueError("backend custom needs a run_command or an image_name")
    spec = base_spec(ctx, custom_argv(ctx), health_path=ctx.health_path or "/v1/models")
    if not run_command:
        return LaunchSpec(**{**vars(spec), "keep_entrypoint": True})
    return spec
