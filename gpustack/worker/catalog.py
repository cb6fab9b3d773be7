"""Applies the server's backend catalog to a launch: version, image per accelerator, health, defaults."""

import logging
from dataclasses import replace
from typing import Any

from gpustack.engines.catalog import accelerator_kind, override_image, pick_image
from gpustack.worker.backends._common import flag_key, group_flags, is_flag, normalize_params, user_flags
from gpustack.worker.backends.base import LaunchContext
from gpustack.worker.client import ServerClient, ServerClientError, ServerResponseError

logger = logging.getLogger(__name__)


class CatalogError(ValueError):
    """The catalog cannot serve this launch (unknown version, no image for the accelerator)."""


def _version(backend: dict[str, Any], wanted: str | None) -> tuple[str | None, dict[str, Any]]:
    versions: dict[str, Any] = backend.get("version_configs") or {}
    version = wanted or backend.get("default_version")
    if version and version in versions:
        return version, versions[version]
    if wanted and versions:
        raise CatalogError(
            f"backend {backend['backend_name']} has no version {wanted!r} (known: {', '.join(sorted(versions))})"
        )
    return version, {}


def _image(
    backend: dict[str, Any], version: str | None, config: dict[str, Any], ctx: LaunchContext, ov: tuple[Any, Any]
) -> str:
    kind = accelerator_kind(ctx.gpu_vendor, bool(ctx.gpu_indexes))
    image = pick_image(config, kind)
    if not image:
        raise CatalogError(
            f"backend {backend['backend_name']} version {version or '(none)'} has no {kind} image for the docker "
            f"runtime: set the model's image_name, or add images.{kind} to the version in /v2/inference-backends"
        )
    if backend.get("is_built_in"):
        image = override_image(image, ov[0], ov[1])
    return image


def _defaults_not_set(defaults: Any, ctx: LaunchContext) -> list[str]:
    """The catalog's default parameters minus the flags the model sets itself."""
    given = user_flags(ctx.backend_parameters)
    groups = group_flags(normalize_params(defaults))
    return [token for g in groups if not (is_flag(g[0]) and flag_key(g[0]) in given) for token in g]


def apply_catalog(
    ctx: LaunchContext,
    backend: dict[str, Any] | None,
    *,
    docker: bool,
    registry: str | None = None,
    namespace: str | None = None,
) -> LaunchContext:
    """The context with the catalog's defaults under the model's own settings: env and parameters (the
    model's win), health path, the version's run command for custom backends, and, for the docker runtime
    without the model's image_name, the version's image for this placement's accelerator kind (built-in
    images under the worker's registry/namespace override)."""
    if backend is None:
        return ctx
    version, config = _version(backend, ctx.backend_version)
    env = {**(backend.get("default_env") or {}), **(config.get("env") or {}), **ctx.env}
    params = (*_defaults_not_set(backend.get("default_backend_param") or (), ctx), *ctx.backend_parameters)
    run_command = ctx.run_command
    if backend["backend_name"] == "custom" and not run_command:
        run_command = config.get("run_command") or backend.get("default_run_command") or None
    image = ctx.image_name
    if docker and not image:
        image = _image(backend, version, config, ctx, (registry, namespace))
    return replace(
        ctx,
        env=env,
        backend_parameters=params,
        run_command=run_command,
        image_name=image,
        health_path=ctx.health_path or backend.get("health_check_path"),
    )


async def fetch_backend(client: ServerClient, name: str) -> dict[str, Any] | None:
    """The server's catalog entry for `name`; None (engine defaults) when it has none or cannot answer."""
    try:
        return await client.get_inference_backend(name)
    except ServerResponseError as exc:
        if exc.status_code != 404:
            logger.warning("backend catalog: %s", exc)
    except ServerClientError as exc:
        logger.warning("backend catalog unavailable, using engine defaults: %s", exc)
    return None
