"""Which workers the gateway currently avoids: one that failed a request is skipped for a while."""

import time

import httpx

_PROBE_TIMEOUT = httpx.Timeout(2.0)


class WorkerHealth:
    """Workers that failed (transport error, or silent past the first-byte timeout and its health probe)
    are suspended for `suspend_seconds`: their routes are tried only after every other route."""

    def __init__(self, suspend_seconds: float = 15.0) -> None:
        self.suspend_seconds = suspend_seconds
        self._until: dict[str, float] = {}

    def suspend(self, worker_name: str) -> None:
        self._until[worker_name] = time.monotonic() + self.suspend_seconds

    def recovered(self, worker_name: str) -> None:
        self._until.pop(worker_name, None)

    def suspended(self, worker_name: str) -> bool:
        until = self._until.get(worker_name)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._until[worker_name]
            return False
        return True


async def worker_answers(client: httpx.AsyncClient, worker_url: str) -> bool:
    """Whether the worker's own HTTP server answers its health probe within 2 s."""
    try:
        response = await client.get(f"{worker_url}/healthz", timeout=_PROBE_TIMEOUT)
    except httpx.TransportError:
        return False
    return response.status_code == 200
