"""Reading numeric engine flags out of a model's backend_parameters."""

from collections.abc import Sequence


def flag_value(backend_parameters: Sequence[str], flags: Sequence[str]) -> str | None:
    """The value of the last of `flags` in the parameters (`--flag N` or `--flag=N`), or None.

    Items may hold several words ("--ctx-size 4096") or one ("--ctx-size", "4096").
    """
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
    return found


def int_flag(backend_parameters: Sequence[str], flags: Sequence[str], what: str) -> int | None:
    """`flag_value` as an int; ValueError naming `what` when it is not one."""
    found = flag_value(backend_parameters, flags)
    if found is None:
        return None
    try:
        return int(found)
    except ValueError as e:
        raise ValueError(f"invalid {what} {found!r} in backend_parameters") from e


def float_flag(backend_parameters: Sequence[str], flag: str) -> float | None:
    """`flag_value` of one flag as a float; ValueError naming the flag when it is not one."""
    found = flag_value(backend_parameters, (flag,))
    if found is None:
        return None
    try:
        return float(found)
    except ValueError as e:
        raise ValueError(f"invalid {flag} {found!r} in backend_parameters") from e
