"""Hides secrets (tokens, keys, passwords) in a model's env, backend parameters and run command from
callers who are not admins."""

import re
from typing import Any

MASK = "******"
_SECRET_WORDS = {"token", "secret", "password", "passwd", "pwd", "credential", "credentials", "key", "apikey"}
_WORD_SPLIT = re.compile(r"[-_.\s]+")


def is_secret_name(name: str) -> bool:
    """HF_TOKEN, OPENAI_API_KEY, --api-key, --hf-token... but not --max-tokens."""
    return any(word in _SECRET_WORDS for word in _WORD_SPLIT.split(name.lower().lstrip("-")))


def redact_env(env: dict[str, str]) -> dict[str, str]:
    return {name: MASK if is_secret_name(name) else value for name, value in env.items()}


def redact_arguments(args: list[str]) -> list[str]:
    """`--api-key=X`, `--api-key X` (one item) and `--api-key`, `X` (two items) all lose X."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            out.append(MASK)
            hide_next = False
            continue
        hide_next = False
        flag, sep, _ = arg.partition("=") if "=" in arg else arg.partition(" ")
        if flag.startswith("-") and is_secret_name(flag):
            out.append(f"{flag}{sep}{MASK}" if sep else arg)
            hide_next = not sep
        else:
            out.append(arg)
    return out


def redact_model(data: dict[str, Any]) -> dict[str, Any]:
    """A model's public JSON with its secrets masked."""
    out = dict(data)
    out["env"] = redact_env(data.get("env") or {})
    out["backend_parameters"] = redact_arguments(list(data.get("backend_parameters") or []))
    if data.get("run_command"):
        out["run_command"] = " ".join(redact_arguments(str(data["run_command"]).split()))
    return out
