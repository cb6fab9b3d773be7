"""Helpers shared by backend builders: user-parameter merging and container mounts."""

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from gpustack.worker.backends.base import LaunchContext, LaunchSpec

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"^-\d|^-\.\d")


def is_flag(token: str) -> bool:
    """`-x` / `--xx` / `--xx=v` are flags; `-1` or `-0.5` are values."""
    return token.startswith("-") and len(token) > 1 and not _NUMBER.match(token)


def normalize_params(params: Iterable[str]) -> list[str]:
    """Tokens from user parameters; an item like "--ctx-size 8192" is split into flag and value."""
    tokens: list[str] = []
    for item in params:
        item = item.strip()
        if not item:
            continue
        head, _, rest = item.partition(" ")
        if is_flag(item) and "=" not in head and rest.strip():
            tokens.extend([head, rest.strip()])
        else:
            tokens.append(item)
    return tokens


def group_flags(tokens: Sequence[str]) -> list[list[str]]:
    """[flag, values...] groups; tokens before the first flag form a group of their own."""
    groups: list[list[str]] = []
    for token in tokens:
        if is_flag(token) or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def flag_key(flag: str, aliases: Sequence[Iterable[str]] = ()) -> str:
    """Canonical name: the first alias of its group, else the flag with `_` as `-` and no `=value`."""
    name = flag.split("=", 1)[0]
    for group in aliases:
        names = list(group)
        if name in names:
            return names[0]
    return "--" + name.lstrip("-").replace("_", "-")


def merge_args(
    defaults: Sequence[str],
    params: Iterable[str],
    aliases: Sequence[Iterable[str]] = (),
    protected: Iterable[str] = (),
) -> list[str]:
    """Defaults followed by the user's parameters; a user flag replaces the default of the same flag.

    Flags in `protected` (e.g. host and port the worker proxies to) are kept from the defaults and
    dropped from the user's parameters with a warning.
    """
    locked = {flag_key(f, aliases) for f in protected}
    user: list[list[str]] = []
    for group in group_flags(normalize_params(params)):
        if is_flag(group[0]) and flag_key(group[0], aliases) in locked:
            logger.warning("ignoring backend parameter %s: set by the worker", " ".join(group))
            continue
        user.append(group)
    overridden = {flag_key(g[0], aliases) for g in user if is_flag(g[0])}
    merged: list[str] = []
    for group in group_flags(defaults):
        if not (is_flag(group[0]) and flag_key(group[0], aliases) in overridden):
            merged.extend(group)
    for group in user:
        merged.extend(group)
    return merged


def model_mounts(ctx: LaunchContext) -> tuple[str, ...]:
    """Bind mounts for container runs: the model path when it is an absolute local path."""
    if ctx.image_name and PurePosixPath(ctx.model_path).is_absolute():
        return (ctx.model_path,)
    return ()


class BackendUnavailableError(RuntimeError):
    """The engine a backend needs is not installed on this worker (and no image was given)."""


def base_spec(ctx: LaunchContext, argv: Sequence[str], health_path: str = "/v1/models") -> LaunchSpec:
    """A LaunchSpec carrying the context's env, GPUs, name, work dir, image and model mount."""
    return LaunchSpec(
        argv=tuple(argv),
        env=dict(ctx.env),
        port=ctx.port,
        health_path=health_path,
        image=ctx.image_name,
        gpu_indexes=ctx.gpu_indexes,
        gpu_vendor=ctx.gpu_vendor,
        name=ctx.instance_name,
        work_dir=ctx.work_dir,
        mounts=model_mounts(ctx),
    )
