"""Byte units and human-readable formatting for scheduler messages."""

MiB = 1024**2
GiB = 1024**3


def fmt_bytes(n: int) -> str:
    """Format bytes as GiB (>= 1 GiB) or MiB with one decimal, e.g. '5.2 GiB', '512.0 MiB'."""
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    return f"{n / MiB:.1f} MiB"
