"""reconcile_forever: runs at once, again on its period or when a watched kind changes, survives failures."""

import asyncio
import logging

import pytest

from gpustack.server.controllers.loop import reconcile_forever
from gpustack.server.events import Event, EventBus, EventType


async def _wait_for(check, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_event_of_a_watched_kind_wakes_the_loop_early() -> None:
    bus = EventBus()
    calls: list[float] = []

    async def reconcile() -> None:
        calls.append(asyncio.get_running_loop().time())

    task = asyncio.create_task(
        reconcile_forever("t", reconcile, period=60.0, bus=bus, kinds=("models",), debounce=0.01)
    )
    try:
        await _wait_for(lambda: len(calls) == 1)
        await asyncio.sleep(0.05)  # let the watcher subscribe
        bus.publish(Event("workers", EventType.UPDATED, {}))  # not watched
        await asyncio.sleep(0.1)
        assert len(calls) == 1
        bus.publish(Event("models", EventType.CREATED, {"id": 1}))
        await _wait_for(lambda: len(calls) == 2, timeout=1.0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_failed_pass_is_logged_and_retried_on_the_period(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="gpustack.server.controllers.loop"):
        task = asyncio.create_task(reconcile_forever("flaky", flaky, period=0.05))
        try:
            await _wait_for(lambda: calls >= 3)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert any("reconcile pass of flaky failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_cancel_stops_the_event_watchers() -> None:
    bus = EventBus()

    async def noop() -> None:
        return None

    task = asyncio.create_task(reconcile_forever("w", noop, period=60.0, bus=bus, kinds=("a", "b")))
    await _wait_for(lambda: len(bus._subs["a"]) == 1 and len(bus._subs["b"]) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_for(lambda: not bus._subs["a"] and not bus._subs["b"])


async def test_a_streak_of_the_same_failure_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A database outage fails every pass the same way: one traceback, then one line when it is over."""
    calls = 0

    async def down_then_up() -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionRefusedError("database is down")

    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(reconcile_forever("t", down_then_up, period=0.01))
    try:
        await _wait_for(lambda: calls >= 7)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert [r.getMessage() for r in caplog.records if "succeed again" in r.getMessage()] == [
        "reconcile passes of t succeed again"
    ]
