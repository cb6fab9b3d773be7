"""Usage services: write a batch of metered requests with its rollups, and query them grouped."""

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gpustack.core.errors import InvalidError
from gpustack.schemas.api_keys import ApiKey
from gpustack.schemas.common import utcnow
from gpustack.schemas.usage import (
    Granularity,
    UsageGroup,
    UsageItem,
    UsageRecord,
    UsageReport,
    UsageRollup,
    UsageSummary,
)
from gpustack.schemas.users import User

# How long each rollup is kept; day rollups are kept for good.
ROLLUP_RETENTION = {Granularity.MINUTE: timedelta(days=7), Granularity.HOUR: timedelta(days=400)}
MAX_RANGE_BUCKETS = 100_000
_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms_sum")


def bucket_of(moment: datetime, granularity: Granularity) -> datetime:
    if granularity == Granularity.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity == Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


_STEP = {
    Granularity.MINUTE: timedelta(minutes=1),
    Granularity.HOUR: timedelta(hours=1),
    Granularity.DAY: timedelta(days=1),
}


def _rollup_deltas(records: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], list[float]]:
    deltas: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0])
    buckets: dict[tuple[int, ...], tuple[tuple[str, datetime], ...]] = {}  # per minute of the batch, computed once
    for r in records:
        at = r["created_at"]
        minute = (at.year, at.month, at.day, at.hour, at.minute)
        if (keys := buckets.get(minute)) is None:
            keys = buckets[minute] = tuple((g.value, bucket_of(at, g)) for g in Granularity)
        row = (1, 1 if r["status"] >= 400 else 0, r["prompt_tokens"], r["completion_tokens"], r["total_tokens"],
               r["latency_ms"])  # fmt: skip
        who = (r["user_id"], r["api_key_id"], r["model"], r["route"])
        for key in keys:
            sums = deltas[(*key, *who)]
            for i, value in enumerate(row):
                sums[i] += value
    return deltas


def _upsert(dialect: str) -> Any:
    """INSERT of rollup rows that adds to the row already there (one statement for the whole batch)."""
    table = UsageRollup.__table__  # type: ignore[attr-defined]
    if dialect == "mysql":
        mysql = mysql_insert(table)
        return mysql.on_duplicate_key_update({name: table.c[name] + mysql.inserted[name] for name in _SUMS})
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    keys = ["granularity", "bucket", "user_id", "api_key_id", "model", "route"]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: table.c[name] + stmt.excluded[name] for name in _SUMS}
    )


async def write_usage(*, session: AsyncSession, records: Sequence[Mapping[str, Any]]) -> None:
    """Inserts the records (usage_records rows as dicts) and adds them to their rollups in one transaction:
    one multi-row INSERT, and one upsert for every rollup row the batch touches."""
    if not records:
        return
    await session.execute(UsageRecord.__table__.insert(), list(records))  # type: ignore[attr-defined]
    rows = [
        {"granularity": gran, "bucket": bucket, "user_id": user_id, "api_key_id": key_id, "model": model,
         "route": route, **dict(zip(_SUMS, sums, strict=True))}
        for (gran, bucket, user_id, key_id, model, route), sums in _rollup_deltas(records).items()
    ]  # fmt: skip
    await session.execute(_upsert(session.get_bind().dialect.name), rows)
    await session.commit()


async def prune_usage(*, session: AsyncSession, record_days: int) -> None:
    """Drops raw records past their retention, and minute/hour rollups past theirs."""
    now = utcnow()
    await session.execute(delete(UsageRecord).where(col(UsageRecord.created_at) < now - timedelta(days=record_days)))
    for gran, keep in ROLLUP_RETENTION.items():
        stmt = delete(UsageRollup).where(
            col(UsageRollup.granularity) == gran.value, col(UsageRollup.bucket) < now - keep
        )
        await session.execute(stmt)
    await session.commit()


@dataclass(frozen=True)
class UsageQuery:
    start: datetime | None = None
    end: datetime | None = None
    group_by: tuple[UsageGroup, ...] = (UsageGroup.MODEL,)
    granularity: Granularity | None = None  # also split each group per bucket
    model: str | None = None
    user_id: int | None = None
    api_key_id: int | None = None


def _source(query: UsageQuery, start: datetime, end: datetime) -> Granularity:
    """The rollup to read: the one asked for, else the coarsest whose buckets fit the range's bounds."""
    if query.granularity is not None:
        return query.granularity
    for gran in (Granularity.DAY, Granularity.HOUR):
        if bucket_of(start, gran) == start and bucket_of(end, gran) == end:
            return gran
    return Granularity.MINUTE


def _range(query: UsageQuery) -> tuple[datetime, datetime]:
    end = query.end or utcnow().replace(microsecond=0) + timedelta(minutes=1)
    start = query.start or end - timedelta(days=1)
    if start.tzinfo is not None or end.tzinfo is not None:
        raise InvalidError("start and end are UTC times without an offset, e.g. 2026-11-25T00:00:00")
    if start >= end:
        raise InvalidError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    return start, end


_COLUMNS: dict[UsageGroup, Any] = {
    UsageGroup.MODEL: UsageRollup.model,
    UsageGroup.USER: UsageRollup.user_id,
    UsageGroup.API_KEY: UsageRollup.api_key_id,
    UsageGroup.ROUTE: UsageRollup.route,
}
_FIELDS = {UsageGroup.MODEL: "model", UsageGroup.USER: "user_id", UsageGroup.API_KEY: "api_key_id"}


def _statement(query: UsageQuery, viewer: User, gran: Granularity, start: datetime, end: datetime) -> Any:
    keys: list[Any] = [_COLUMNS[g] for g in query.group_by]
    if query.granularity is not None:
        keys.insert(0, UsageRollup.bucket)
    sums = [func.sum(getattr(UsageRollup, name)).label(name) for name in _SUMS]
    stmt = select(*keys, *sums).where(
        col(UsageRollup.granularity) == gran.value,
        col(UsageRollup.bucket) >= bucket_of(start, gran),
        col(UsageRollup.bucket) < end,
    )
    user_id = query.user_id if viewer.is_admin else viewer.id  # a user sees their own usage only
    filters = {"model": query.model, "user_id": user_id, "api_key_id": query.api_key_id}
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(UsageRollup, name) == value)
    return stmt.group_by(*keys).order_by(*keys) if keys else stmt


async def _names(session: AsyncSession, items: list[UsageItem]) -> None:
    user_ids = {i.user_id for i in items if i.user_id is not None}
    key_ids = {i.api_key_id for i in items if i.api_key_id}
    user_stmt = select(col(User.id), col(User.username)).where(col(User.id).in_(user_ids))
    key_stmt = select(col(ApiKey.id), col(ApiKey.name)).where(col(ApiKey.id).in_(key_ids))
    users: dict[int | None, str] = {row[0]: row[1] for row in (await session.execute(user_stmt)).all()}
    keys: dict[int | None, str] = {row[0]: row[1] for row in (await session.execute(key_stmt)).all()}
    for item in items:
        item.user_name = users.get(item.user_id) if item.user_id is not None else None
        item.api_key_name = keys.get(item.api_key_id) if item.api_key_id else None


def _item(row: Any, query: UsageQuery) -> UsageItem:
    data = row._mapping
    item = UsageItem(
        bucket=data.get("bucket"),
        api_requests=int(data["requests"] or 0),
        errors=int(data["errors"] or 0),
        input_tokens=int(data["prompt_tokens"] or 0),
        output_tokens=int(data["completion_tokens"] or 0),
        total_tokens=int(data["total_tokens"] or 0),
    )
    item.avg_latency_ms = round(float(data["latency_ms_sum"] or 0) / item.api_requests, 3) if item.api_requests else 0.0
    for group in query.group_by:
        name = _FIELDS.get(group, group.value)
        setattr(item, name, data["model" if group == UsageGroup.MODEL else _COLUMNS[group].key])
    return item


async def usage_report(*, session: AsyncSession, viewer: User, query: UsageQuery) -> UsageReport:
    start, end = _range(query)
    gran = _source(query, start, end)
    if (end - start) / _STEP[gran] > MAX_RANGE_BUCKETS:
        raise InvalidError(f"{gran.value} buckets over this range are too many; use a coarser granularity")
    rows = (await session.execute(_statement(query, viewer, gran, start, end))).all()
    items = [_item(row, query) for row in rows]
    await _names(session, items)
    models = {i.model for i in items} if UsageGroup.MODEL in query.group_by else set()
    summary = UsageSummary(
        api_requests=sum(i.api_requests for i in items),
        input_tokens=sum(i.input_tokens for i in items),
        output_tokens=sum(i.output_tokens for i in items),
        total_tokens=sum(i.total_tokens for i in items),
        models_called=len(models),
    )
    return UsageReport(
        start=start, end=end, granularity=gran, group_by=list(query.group_by), summary=summary, items=items
    )


CSV_COLUMNS = list(UsageItem.model_fields)


async def usage_csv(*, session: AsyncSession, viewer: User, query: UsageQuery) -> str:
    """The same report as rows of CSV, one per group (and bucket)."""
    report = await usage_report(session=session, viewer=viewer, query=query)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in report.items:
        row = item.model_dump()
        row["bucket"] = item.bucket.isoformat() if item.bucket else ""
        writer.writerow(row)
    return out.getvalue()
