"""A level-triggered reconcile loop: runs on a period, and sooner when an event wakes it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from gpustack.core.tasks import wait_event
from gpustack.server.events import EventBus

logger = logging.getLogger(__name__)


async def reconcile_forever(
    name: str,
    reconcile: Callable[[], Awaitable[None]],
    *,
    period: float,
    bus: EventBus | None = None,
    kinds: Iterable[str] = (),
    debounce: float = 0.05,
) -> None:
    """Calls `reconcile` every `period` seconds or when `kinds` change; a failed pass is logged and retried."""
    wake = asyncio.Event()
    watchers = [asyncio.create_task(_forward(bus, kind, wake)) for kind in kinds] if bus else []
    failing: str | None = None  # the error of the failing streak, logged with its traceback only once
    try:
        while True:
            try:
                await reconcile()
                if failing is not None:
                    logger.warning("reconcile passes of %s succeed again", name)
                    failing = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if error != failing:
                    logger.exception("reconcile pass of %s failed (repeats are not logged)", name)
                failing = error
            if await wait_event(wake, period):
                await asyncio.sleep(debounce)
    finally:
        for task in watchers:
            task.cancel()


async def _forward(bus: EventBus, kind: str, wake: asyncio.Event) -> None:
    while not bus.closed:
        with bus.subscribe(kind) as sub:
            while True:
                ev = await sub.queue.get()
                wake.set()
                if ev is None:  # overflowed: subscribe again
                    break
