"""Watch streams: the current rows as `created` events, then live changes, as JSON lines."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from gpustack.server.db import Database
from gpustack.server.events import Event, EventBus, EventType

HEARTBEAT_SECONDS = 15.0


def _line(ev_type: str, data: dict[str, Any] | None) -> bytes:
    return (json.dumps({"type": ev_type, "data": data}) + "\n").encode()


def _matches(data: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    return all(data.get(k) == v for k, v in filters.items())


Transform = Callable[[dict[str, Any]], dict[str, Any]]


def _filtered(ev: Event, filters: Mapping[str, Any], transform: Transform) -> bytes | None:
    """The line a filtered watcher sees: an update that moves a row out of the filter is a deletion."""
    if _matches(ev.data, filters):
        return _line(ev.type, transform(ev.data))
    if ev.type == EventType.UPDATED and ev.previous and _matches({**ev.data, **ev.previous}, filters):
        return _line(EventType.DELETED, transform(ev.data))
    return None


def _same(data: dict[str, Any]) -> dict[str, Any]:
    return data


async def watch(
    *,
    db: Database,
    bus: EventBus,
    table: type[Any],
    public: type[BaseModel],
    filters: Mapping[str, Any],
    transform: Transform = _same,
) -> AsyncIterator[bytes]:
    """Subscribes before listing so no change between the listing and the feed is lost."""
    with bus.subscribe(table.__tablename__) as sub:
        async with db.session() as session:
            stmt = select(table).order_by(col(table.id))
            for key, value in filters.items():
                stmt = stmt.where(getattr(table, key) == value)
            rows = (await session.execute(stmt)).scalars().all()
            initial = [transform(public.model_validate(r, from_attributes=True).model_dump(mode="json")) for r in rows]
        for data in initial:
            yield _line(EventType.CREATED, data)
        while True:
            try:
                ev: Event | None = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield _line(EventType.HEARTBEAT, None)
                continue
            if ev is None:  # fell behind: end the stream so the client resyncs
                return
            line = _filtered(ev, filters, transform)
            if line is not None:
                yield line
