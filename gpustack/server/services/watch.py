"""Watch streams: the current rows as `created` events, then live changes, framed as GPUStack frames them."""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from gpustack.compat import watch as wire
from gpustack.server.db import Database
from gpustack.server.events import Event, EventBus, EventType

HEARTBEAT_SECONDS = 15.0


def _line(ev_type: str, data: dict[str, Any], previous: dict[str, Any] | None = None) -> bytes:
    return wire.frame(ev_type, data, wire.changed_fields(previous, data) if previous else None)


Transform = Callable[[dict[str, Any]], dict[str, Any]]
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class RowFilter:
    """A filter beyond column equality: `condition` selects the replayed rows in SQL, `predicate` (its
    mirror on a row's public form) the live events."""

    condition: Any
    predicate: Predicate


def _matches(data: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    return all(v.predicate(data) if isinstance(v, RowFilter) else data.get(k) == v for k, v in filters.items())


def _filtered(ev: Event, filters: Mapping[str, Any], transform: Transform) -> bytes | None:
    """The line a filtered watcher sees: an update that moves a row out of the filter is a deletion."""
    if _matches(ev.data, filters):
        data = transform(ev.data)
        old = transform({**ev.data, **ev.previous}) if ev.previous else {}  # masked as the row is
        return _line(ev.type, data, {k: old[k] for k in ev.previous if k in data and k in old})
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
            stmt = select(table).order_by(col(table.id))  # replayed oldest first, as the rows were created
            for key, value in filters.items():
                stmt = stmt.where(value.condition if isinstance(value, RowFilter) else getattr(table, key) == value)
            rows = (await session.execute(stmt)).scalars().all()
            initial = [transform(public.model_validate(r, from_attributes=True).model_dump(mode="json")) for r in rows]
        for data in initial:
            yield _line(EventType.CREATED, data)
        while True:
            try:
                ev: Event | None = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield wire.HEARTBEAT
                continue
            if ev is None:  # fell behind: end the stream so the client resyncs
                return
            line = _filtered(ev, filters, transform)
            if line is not None:
                yield line
