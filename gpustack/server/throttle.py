"""Failed-login throttling per user name and per client address (in memory, per server process)."""

import time
from dataclasses import dataclass

from gpustack.core.errors import TooManyRequestsError

_MAX_KEYS = 50_000


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """After `limit` failures a key (user or address) must wait before its next attempt: 1 s, then twice
    as long after each further failure, up to `max_wait`. A key with no failure for `forget_after`
    seconds starts afresh. Checked before any password hash is computed, so a refused attempt is cheap."""

    def __init__(
        self, *, per_user: int = 20, per_address: int = 50, max_wait: float = 300.0, forget_after: float = 600.0
    ) -> None:
        self.limits = {"user": per_user, "addr": per_address}
        self.max_wait = max_wait
        self.forget_after = forget_after
        self._failures: dict[str, _Failures] = {}

    def _wait(self, kind: str, name: str, now: float) -> float:
        entry = self._failures.get(f"{kind}:{name}")
        if entry is None:
            return 0.0
        if now - entry.last > self.forget_after:
            del self._failures[f"{kind}:{name}"]
            return 0.0
        over = entry.count - self.limits[kind]
        if over < 0:
            return 0.0
        return max(0.0, entry.last + min(2.0**over, self.max_wait) - now)

    def check(self, username: str, address: str) -> None:
        """Raises TooManyRequestsError while the user or the address has to wait."""
        now = time.monotonic()
        wait = max(self._wait("user", username, now), self._wait("addr", address, now))
        if wait > 0:
            raise TooManyRequestsError(f"too many failed logins; try again in {int(wait + 0.999)}s", retry_after=wait)

    def failed(self, username: str, address: str) -> None:
        if len(self._failures) >= _MAX_KEYS:
            self._failures.clear()
        now = time.monotonic()
        for key in (f"user:{username}", f"addr:{address}"):
            entry = self._failures.setdefault(key, _Failures(0, now))
            entry.count += 1
            entry.last = now
