"""Helpers shared by backend builders: user-parameter merging and container mounts."""

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

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


def base_spec(
    ctx: LaunchContext,
    argv: Sequence[str],
    health_path: str = "/v1/models",
    env: dict[str, str] | None = None,
    files: tuple[tuple[str, str], ...] = (),
) -> LaunchSpec:
    """A LaunchSpec carrying the context's env (over the backend's `env`), GPUs, name, work dir, image and
    model mount; the catalog's health path, when the context has one, wins over the backend's."""
    return LaunchSpec(
        argv=tuple(argv),
        env={**(env or {}), **ctx.env},
        port=ctx.port,
        health_path=ctx.health_path or health_path,
        files=files,
        image=ctx.image_name,
        gpu_indexes=ctx.gpu_indexes,
        gpu_vendor=ctx.gpu_vendor,
        name=ctx.instance_name,
        work_dir=ctx.work_dir,
        mounts=model_mounts(ctx),
    )


DEFAULT_MAX_CONTEXT = 8192  # GPUStack's cap for large-context models when nothing else was said
_CONTEXT_KEYS = ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions", "max_seq_len")
_AUDIO_OMNI = re.compile(r"(audio|omni|speech|whisper|tts|asr)", re.IGNORECASE)


def read_model_config(model_path: str) -> dict[str, Any]:
    """The model's config.json (a directory's, or the one next to a file); {} when absent or unreadable."""
    path = Path(model_path)
    candidate = path / "config.json" if path.is_dir() else path.parent / "config.json"
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def config_max_context(config: dict[str, Any]) -> int | None:
    """The largest context config.json declares (its own keys or its text_config's)."""
    values: list[int] = []
    for section in (config, config.get("text_config") or {}, config.get("llm_config") or {}):
        if isinstance(section, dict):
            values += [v for k in _CONTEXT_KEYS if isinstance(v := section.get(k), int) and v > 0]
    return max(values) if values else None


def is_audio_or_omni(config: dict[str, Any], categories: Iterable[str] = ()) -> bool:
    """Audio and omni-modal models keep their own context (GPUStack skips the 8192 rule for them)."""
    if {"tts", "stt", "speech_to_text", "text_to_speech", "audio"} & set(categories):
        return True
    names = [*(config.get("architectures") or []), str(config.get("model_type") or "")]
    return any(_AUDIO_OMNI.search(str(name)) for name in names)


def default_context(ctx: LaunchContext) -> int | None:
    """The context length to pass when the user gave none: the claim's, else 8192 when config.json
    declares more (not for audio/omni models), else None (the engine's own default)."""
    if ctx.context_size:
        return ctx.context_size
    config = read_model_config(ctx.model_path)
    if is_audio_or_omni(config, ctx.categories):
        return None
    declared = config_max_context(config)
    return DEFAULT_MAX_CONTEXT if declared and declared > DEFAULT_MAX_CONTEXT else None


def user_flags(params: Iterable[str], aliases: Sequence[Iterable[str]] = ()) -> set[str]:
    """Canonical names of the flags the user gave in backend_parameters."""
    return {flag_key(g[0], aliases) for g in group_flags(normalize_params(params)) if is_flag(g[0])}


def fraction(value: float) -> str:
    """A memory fraction as engines print it (0.9, not 0.90000001)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")
