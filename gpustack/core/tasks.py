"""The one guarded helper that creates long-lived background tasks and logs their crashes."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class TaskGroup:
    """Owns named background loops; a loop that crashes is logged and restarted after a pause."""

    def __init__(self, restart_delay: float = 2.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.restart_delay = restart_delay

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task '{name}' is already running")
        self._tasks[name] = asyncio.create_task(self._guard(name, factory), name=name)

    async def _guard(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await factory()
                logger.info("background task %s finished", name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("background task %s crashed; restarting in %.1fs", name, self.restart_delay)
            await asyncio.sleep(self.restart_delay)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Waits for `event` at most `timeout` seconds, then clears it; True when it was set.

    The shape of every level-triggered loop: run on a period, sooner when something wakes it."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    finally:
        event.clear()
    return True
