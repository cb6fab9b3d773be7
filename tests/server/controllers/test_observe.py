"""Scheduling outcomes counted from the change feed, as the scheduling controller's writes publish them."""

import asyncio

from gpustack.server.controllers.observe import count_decisions, decision
from gpustack.server.events import Event, EventBus, EventType
from gpustack.server.metrics import ServerMetrics


def _ev(state: str, previous: dict[str, object], message: str | None = None) -> Event:
    return Event("model_instances", EventType.UPDATED, {"state": state, "state_message": message}, previous)


def test_placements_and_refusals_are_told_apart() -> None:
    assert decision(_ev("scheduled", {"state": "analyzing"})) == "placed"
    assert decision(_ev("scheduled", {"state": "pending"})) == "placed"
    assert decision(_ev("pending", {"state": "analyzing"}, "no worker has 80 GiB free")) == "refused"
    assert decision(_ev("pending", {"state_message": "old reason"}, "new reason")) == "refused"
    assert decision(_ev("running", {"state": "starting"})) is None  # a worker's progress, not a decision
    assert decision(_ev("pending", {"state": "unreachable"})) is None  # moved back by liveness, no reason yet
    assert decision(Event("model_instances", EventType.CREATED, {"state": "pending"})) is None


async def test_decisions_are_counted_from_the_bus() -> None:
    bus, metrics = EventBus(), ServerMetrics()
    task = asyncio.create_task(count_decisions(bus, metrics))
    await asyncio.sleep(0.01)
    bus.publish(_ev("scheduled", {"state": "analyzing"}))
    bus.publish(_ev("pending", {"state": "analyzing"}, "no fit"))
    bus.publish(_ev("pending", {"state_message": "no fit"}, "still no fit"))
    await asyncio.sleep(0.05)
    bus.close()
    await asyncio.wait_for(task, 2)
    assert metrics.registry.get_sample_value("gpustack_scheduler_decisions_total", {"outcome": "placed"}) == 1
    assert metrics.registry.get_sample_value("gpustack_scheduler_decisions_total", {"outcome": "refused"}) == 2
