"""Metering of OpenAI requests: one record per request into an in-memory queue; a writer task batches
them into SQL. Nothing here touches the database on the request path."""

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import Response, StreamingResponse

from gpustack.gateway.usage import UsageWatch
from gpustack.schemas.usage import NO_KEY
from gpustack.server.db import Database
from gpustack.server.metrics import ServerMetrics
from gpustack.server.services.usage import prune_usage, write_usage

logger = logging.getLogger(__name__)

BATCH = 500  # records that wake the writer before its interval
MAX_QUEUED = 200_000  # during a database outage, older records beyond this are dropped (and logged)
TAIL_BYTES = 16 << 10  # a JSON answer's usage object sits at its end
_TOKENS = {name: re.compile(rb'"%s"\s*:\s*(\d+)' % name.encode()) for name in ("prompt_tokens", "completion_tokens")}


class Metered:
    """One request on its way: who, what, when; filled in as the answer passes. Only plain attributes are set
    on the request path (no datetime, no metric label lookups): the writer derives the rest."""

    __slots__ = ("user_id", "api_key_id", "model", "route", "started", "wall", "status", "ttft", "latency",
                 "tail", "watch", "observed")  # fmt: skip

    def __init__(self, user_id: int, api_key_id: int, model: str, route: str, *, status: int = 0,
                 tail: bytes = b"", watch: UsageWatch | None = None) -> None:  # fmt: skip
        self.user_id, self.api_key_id, self.model, self.route = user_id, api_key_id, model, route
        self.started = time.perf_counter()
        self.wall = time.time()  # the record's created_at, made a datetime by the writer
        self.status = status
        self.ttft: float | None = None
        self.latency = 0.0
        self.tail = tail  # the end of a JSON answer, parsed by the writer
        self.watch = watch
        self.observed = False  # counted in the metrics (a batch the database refused is not counted twice)


def tokens_from_tail(tail: bytes) -> tuple[int, int] | None:
    """(prompt, completion) from the last usage numbers in a JSON answer's end; None when it has none."""
    found = []
    for pattern in _TOKENS.values():
        matches = pattern.findall(tail)
        found.append(int(matches[-1]) if matches else None)
    if found[0] is None and found[1] is None:
        return None
    return found[0] or 0, found[1] or 0


def to_record(m: Metered) -> dict[str, Any]:
    """The usage_records row of one request (a plain dict: the writer builds hundreds per second)."""
    prompt = completion = 0
    estimated = False
    if m.watch is not None and m.watch.prompt_tokens is not None:
        prompt, completion, estimated = m.watch.prompt_tokens, m.watch.reported_completion, not m.watch.engine_usage
    elif m.tail and (parsed := tokens_from_tail(m.tail)) is not None:
        prompt, completion = parsed
    return {
        "created_at": datetime.fromtimestamp(m.wall, UTC).replace(tzinfo=None),
        "user_id": m.user_id,
        "api_key_id": m.api_key_id or NO_KEY,
        "model": m.model[:255],
        "route": m.route[:64],
        "status": m.status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "estimated": estimated,
        "latency_ms": round(m.latency * 1000, 3),
        "ttft_ms": round(m.ttft * 1000, 3) if m.ttft is not None else None,
    }


class Meter:
    """The gateway's side: counts in memory at once, queues the record for the writer."""

    def __init__(self, metrics: ServerMetrics, *, persist: bool = True) -> None:
        self.metrics = metrics
        self.persist = persist  # False: token counters only, no usage rows (usage_metering off)
        self.queue: list[Metered] = []
        self.wake = asyncio.Event()
        self.in_flight = 0  # streamed answers being relayed; read by the gauges on scrape
        metrics.in_flight.set_function(lambda: self.in_flight)
        metrics.usage_queue.set_function(lambda: len(self.queue))

    def finish(self, m: Metered) -> None:
        """Queues the request; its counters and histograms are updated by the writer (within a second)."""
        self.queue.append(m)
        if len(self.queue) >= BATCH:
            self.wake.set()

    def meter(self, m: Metered, response: Response) -> Response:
        """Counts `response` now, or when its streamed body ends."""
        m.status = response.status_code
        if not isinstance(response, StreamingResponse):
            m.latency = time.perf_counter() - m.started
            if response.status_code < 400:
                m.tail = bytes(response.body[-TAIL_BYTES:])
            self.finish(m)
            return response
        self.in_flight += 1
        json_body = response.headers.get("content-type", "").startswith("application/json")
        response.body_iterator = self._watch(m, response.body_iterator, json_body)  # type: ignore[arg-type]
        return response

    async def _watch(self, m: Metered, body: AsyncIterator[bytes], keep_tail: bool) -> AsyncIterator[bytes]:
        """Relays the body, timing its first chunk; a stream's events go through its usage watch here."""
        watch = m.watch if m.status == 200 else None
        try:
            async for chunk in body:
                if m.ttft is None:
                    m.ttft = time.perf_counter() - m.started
                if keep_tail:
                    m.tail = (m.tail + chunk)[-TAIL_BYTES:] if m.tail else chunk
                if watch is not None and not (chunk := watch.feed(chunk)):
                    continue
                yield chunk
            if watch is not None and (rest := watch.rest()):
                yield rest
        finally:
            m.latency = time.perf_counter() - m.started
            self.in_flight -= 1
            self.finish(m)

    def take(self) -> list[Metered]:
        batch, self.queue = self.queue, []
        return batch


async def write_forever(meter: Meter, db: Database, *, interval: float = 1.0, retention_days: int = 90) -> None:
    """The writer task: every `interval` (sooner when 500 wait) one transaction for the batch; what is
    queued when the server stops is written before the task ends."""
    pruned = 0.0
    try:
        while True:
            try:
                await asyncio.wait_for(meter.wake.wait(), interval)
            except TimeoutError:
                pass
            meter.wake.clear()
            await flush(meter, db)
            if meter.persist and time.monotonic() - pruned > 3600:
                pruned = time.monotonic()
                await _prune(db, retention_days)
    finally:
        await asyncio.shield(flush(meter, db))


async def _prune(db: Database, retention_days: int) -> None:
    try:
        async with db.session() as session:
            await prune_usage(session=session, record_days=retention_days)
    except Exception:  # loop boundary: pruning is tried again in an hour; writing goes on
        logger.exception("pruning old usage records failed")


async def flush(meter: Meter, db: Database) -> bool:
    """Writes what is queued; on a database failure the batch goes back to the queue for the next try."""
    batch = meter.take()
    if not batch:
        return True
    observe(meter.metrics, batch)
    records = [to_record(m) for m in batch]
    if meter.persist:
        try:
            async with db.session() as session:
                await write_usage(session=session, records=records)
        except Exception:  # loop boundary: the records are kept for the next pass, not lost
            logger.exception("writing %d usage records failed; they are retried with the next batch", len(batch))
            _requeue(meter, batch)
            return False
        meter.metrics.usage_written.inc(len(records))
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        sums = tokens[r["model"]]
        sums[0] += r["prompt_tokens"]
        sums[1] += r["completion_tokens"]
    for model, (prompt, completion) in tokens.items():
        meter.metrics.prompt_tokens.labels(model).inc(prompt)
        meter.metrics.completion_tokens.labels(model).inc(completion)
    return True


def observe(metrics: ServerMetrics, batch: list[Metered]) -> None:
    """Request counters and latency histograms of a batch, once per request (one label lookup per group)."""
    statuses: dict[tuple[str, str, int], int] = defaultdict(int)
    timings: dict[tuple[str, str], list[Metered]] = defaultdict(list)
    for m in batch:
        if not m.observed:
            m.observed = True
            statuses[(m.model, m.route, m.status)] += 1
            timings[(m.model, m.route)].append(m)
    for (model, route, status), count in statuses.items():
        metrics.requests.labels(model, route, str(status)).inc(count)
    for labels, done in timings.items():
        latency, ttft = metrics.latency.labels(*labels), metrics.ttft.labels(*labels)
        for m in done:
            latency.observe(m.latency)
            if m.ttft is not None:
                ttft.observe(m.ttft)


def _requeue(meter: Meter, batch: list[Metered]) -> None:
    meter.queue[:0] = batch
    if len(meter.queue) > MAX_QUEUED:
        dropped = len(meter.queue) - MAX_QUEUED
        del meter.queue[:dropped]
        logger.error("the database is still unavailable: dropped the %d oldest usage records", dropped)
