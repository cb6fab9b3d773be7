"""In-process change feed behind `?watch=true`: rows changed in a committed session are published."""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

QUEUE_SIZE = 2048


class EventType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Event:
    kind: str  # table name, e.g. "model_instances"
    type: EventType
    data: dict[str, Any]
    previous: dict[str, Any] = field(default_factory=dict)  # old values of changed columns (updates)


class Subscription:
    """A bounded queue; on overflow the subscriber is closed so its client resyncs."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.closed = False

    def offer(self, ev: Event) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """Ends the stream: the reader gets None after what is queued (or at once, when full)."""
        if self.closed:
            return
        self.closed = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._serializers: dict[str, type[BaseModel]] = {}
        self.closed = False

    def register(self, kind: str, public: type[BaseModel]) -> None:
        self._serializers[kind] = public

    @contextmanager
    def subscribe(self, kind: str) -> Iterator[Subscription]:
        sub = Subscription()
        if self.closed:
            sub.close()
        self._subs[kind].add(sub)
        try:
            yield sub
        finally:
            self._subs[kind].discard(sub)

    def subscriber_counts(self) -> dict[str, int]:
        """Open subscriptions per kind (watch streams and the server's own loops)."""
        return {kind: len(subs) for kind, subs in self._subs.items()}

    def close(self) -> None:
        """Server shutdown: every open watch stream ends now, so connections can close gracefully."""
        self.closed = True
        for subs in self._subs.values():
            for sub in list(subs):
                sub.close()

    def publish(self, ev: Event) -> None:
        for sub in list(self._subs.get(ev.kind, ())):
            sub.offer(ev)

    def serialize(self, obj: Any) -> tuple[str, dict[str, Any]] | None:
        kind = getattr(obj, "__tablename__", None)
        public = self._serializers.get(kind) if kind else None
        if public is None:
            return None
        return str(kind), public.model_validate(obj, from_attributes=True).model_dump(mode="json")


def _pending(session: Session) -> list[Event]:
    return session.info.setdefault("pending_events", [])


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _ctx: Any) -> None:
    bus: EventBus | None = session.info.get("bus")
    if bus is None:
        return
    groups = (
        (EventType.CREATED, session.new),
        (EventType.UPDATED, (o for o in session.dirty if session.is_modified(o))),
        (EventType.DELETED, session.deleted),
    )
    for ev_type, objs in groups:
        for obj in objs:
            found = bus.serialize(obj)
            if found:
                previous = _previous_values(obj) if ev_type == EventType.UPDATED else {}
                _pending(session).append(Event(found[0], ev_type, found[1], previous))


def _previous_values(obj: Any) -> dict[str, Any]:
    """Values the flush replaced, so a filtered watcher can tell a row just left its filter."""
    out = {}
    for attr in inspect(obj).attrs:
        deleted = attr.history.deleted
        if deleted and isinstance(deleted[0], str | int | float | bool | type(None)):
            out[attr.key] = deleted[0]
    return out


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    bus: EventBus | None = session.info.get("bus")
    events = session.info.pop("pending_events", [])
    if bus is not None:
        for ev in events:
            bus.publish(ev)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop("pending_events", None)
