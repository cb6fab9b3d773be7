"""Reading numeric engine flags out of a model's backend_parameters."""

from collections.abc import Sequence


def int_flag(backend_parameters: Sequence[str], flags: Sequence[str], what: str) -> int | None:
    """The value of the last of `flags` in the parameters (`--flag N` or `--flag=N`), or None."""
    tokens = [word for item in backend_parameters for word in item.split()]
    found: str | None = None
    for i, token in enumerate(tokens):
        flag, sep, value = token.partition("=")
        if flag not in flags:
            continue
        if sep:
            found = value
        elif i + 1 < len(tokens):
            found = tokens[i + 1]
    if found is None:
        return None
    try:
        return int(found)
    except ValueError as e:
        raise ValueError(f"invalid {what} {found!r} in backend_parameters") from e


def float_flag(backend_parameters: Sequence[str], flag: str) -> float | None:
    """The value of the last `flag` in the parameters as a float, or None; ValueError when it is not one."""
    tokens = [word for item in backend_parameters for word in item.split()]
    found: str | None = None
    for i, token in enumerate(tokens):
        name, sep, value = token.partition("=")
        if name != flag:
            continue
        found = value if sep else (tokens[i + 1] if i + 1 < len(tokens) else None)
    if found is None:
        return None
    try:
        return float(found)
    except ValueError as e:
        raise ValueError(f"invalid {flag} {found!r} in backend_parameters") from e
