"""Exponential backoff delays shared by the worker's retry loops."""

import time


class Backoff:
    """Delays base, 2*base, 4*base, ... capped at `cap`; `reset()` after a success starts over."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        delay = min(self.base * (2**self.failures), self.cap)
        self.failures = min(self.failures + 1, 62)
        return delay

    def reset(self) -> None:
        self.failures = 0


def monotonic() -> float:
    """One clock for every worker deadline (never jumps with wall-clock changes)."""
    return time.monotonic()
