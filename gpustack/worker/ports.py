"""Port allocation for inference engines from the configured instance port range."""

import errno
import socket


class NoFreePortError(RuntimeError):
    """Every port of the instance port range is taken or fails the bind test."""


def is_bindable(port: int, host: str = "0.0.0.0") -> bool:
    """True when nothing listens on (or lingers in TIME_WAIT on) `port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


class PortAllocator:
    """Hands out ports round-robin, skipping ports reserved for our engines and ports in use."""

    def __init__(self, low: int, high: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"invalid port range {low}-{high}")
        self.low = low
        self.high = high
        self._reserved: set[int] = set()
        self._cursor = low

    @property
    def reserved(self) -> frozenset[int]:
        return frozenset(self._reserved)

    def allocate(self) -> int:
        """Reserve and return a free port; NoFreePortError when the range is exhausted."""
        size = self.high - self.low + 1
        for step in range(size):
            port = self.low + (self._cursor - self.low + step) % size
            if port in self._reserved or not is_bindable(port):
                continue
            self._reserved.add(port)
            self._cursor = self.low + (port - self.low + 1) % size
            return port
        raise NoFreePortError(
            f"no free port in the instance port range {self.low}-{self.high} "
            f"({len(self._reserved)} reserved by engines of this worker)"
        )

    def reserve(self, port: int) -> None:
        """Mark a port an adopted engine already listens on as taken."""
        self._reserved.add(port)

    def release(self, port: int | None) -> None:
        if port is not None:
            self._reserved.discard(port)
