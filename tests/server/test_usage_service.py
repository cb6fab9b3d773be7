"""Usage writes, rollups and queries on SQLite, PostgreSQL and MariaDB; GPU history sampling and pruning."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gpustack.schemas.common import utcnow
from gpustack.schemas.gpu_history import GPUSample
from gpustack.schemas.usage import Granularity, UsageGroup, UsageRecord, UsageRollup
from gpustack.schemas.users import User
from gpustack.schemas.workers import Worker, WorkerState
from gpustack.server.db import Database
from gpustack.server.migrate import run_migrations
from gpustack.server.services.gpu_history import gpu_history, sample_gpus
from gpustack.server.services.usage import UsageQuery, bucket_of, prune_usage, usage_report, write_usage
from tests.utils.databases import BACKENDS, temporary_database

T0 = datetime(2026, 3, 1, 10, 0)


def _row(**fields: Any) -> dict[str, Any]:
    """A usage_records row as the writer passes it, validated by the table model."""
    return UsageRecord(**fields).model_dump(exclude={"id"})


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    with temporary_database(request.param, tmp_path) as url:
        database = Database(url)
        await run_migrations(database.engine)
        async with database.session() as session:
            session.add_all(
                [User(username="ann", hashed_password="x", is_admin=True), User(username="bob", hashed_password="x")]
            )
            await session.commit()
        try:
            yield database
        finally:
            await database.dispose()


def _record(minute: int, user_id: int, model: str, *, status: int = 200, key: int = 0) -> dict[str, Any]:
    return _row(created_at=T0 + timedelta(minutes=minute, seconds=5), user_id=user_id, api_key_id=key,
                       model=model, route="/v1/chat/completions", status=status, prompt_tokens=10,
                       completion_tokens=5, total_tokens=15, latency_ms=20.0)  # fmt: skip


async def _report(db: Database, viewer_id: int, **kwargs: object) -> object:
    async with db.session() as session:
        viewer = await session.get(User, viewer_id)
        assert viewer is not None
        return await usage_report(session=session, viewer=viewer, query=UsageQuery(**kwargs))  # type: ignore[arg-type]


async def test_batches_add_to_the_same_rollups(db: Database) -> None:
    first = [_record(0, 1, "a"), _record(0, 1, "a", status=500), _record(1, 2, "b", key=7)]
    second = [_record(0, 1, "a"), _record(70, 2, "b", key=7)]
    for batch in (first, second):
        async with db.session() as session:
            await write_usage(session=session, records=batch)
    async with db.session() as session:
        minute_rows = (await session.execute(select(func.count()).select_from(UsageRollup).where(
            UsageRollup.granularity == "minute"))).scalar_one()  # fmt: skip
    assert minute_rows == 3  # (0, ann, a) merged across batches, (1, bob, b), (70, bob, b)
    end = T0 + timedelta(days=1)
    by_model = await _report(db, 1, start=T0, end=end, group_by=(UsageGroup.MODEL,))
    items = {i.model: i for i in by_model.items}  # type: ignore[attr-defined]
    assert (items["a"].api_requests, items["a"].errors, items["a"].total_tokens) == (3, 1, 45)
    assert (items["b"].api_requests, items["b"].input_tokens, items["b"].output_tokens) == (2, 20, 10)
    assert by_model.granularity == Granularity.HOUR  # type: ignore[attr-defined]  # 10:00 to 10:00: hour-aligned
    hourly = await _report(db, 1, start=T0, end=end, group_by=(UsageGroup.USER,), granularity=Granularity.HOUR)
    cells = {(i.bucket, i.user_name): i.api_requests for i in hourly.items}  # type: ignore[attr-defined]
    assert cells == {(T0, "ann"): 3, (T0, "bob"): 1, (T0 + timedelta(hours=1), "bob"): 1}
    # a range that cuts an hour is answered from minute rollups: only minutes 0 and 1 fall in it
    narrow = await _report(db, 1, start=T0, end=T0 + timedelta(minutes=2), group_by=(UsageGroup.API_KEY,))
    assert {i.api_key_id: i.api_requests for i in narrow.items} == {0: 3, 7: 1}  # type: ignore[attr-defined]
    assert narrow.granularity == Granularity.MINUTE  # type: ignore[attr-defined]
    own = await _report(db, 2, start=T0, end=end, group_by=(UsageGroup.USER,), user_id=1)
    assert [(i.user_name, i.api_requests) for i in own.items] == [("bob", 2)]  # type: ignore[attr-defined]


async def test_ten_thousand_records_roll_up_and_query(db: Database) -> None:
    records = [_record(i % 600, 1 + i % 2, f"m{i % 5}") for i in range(10_000)]
    async with db.session() as session:
        await write_usage(session=session, records=records)
    report = await _report(db, 1, start=T0, end=T0 + timedelta(days=1), group_by=(UsageGroup.MODEL,))
    assert report.summary.api_requests == 10_000 and report.summary.total_tokens == 150_000  # type: ignore[attr-defined]


async def test_prune_keeps_day_rollups(db: Database) -> None:
    old = utcnow() - timedelta(days=30)
    rec = _record(0, 1, "a")
    rec["created_at"] = old
    async with db.session() as session:
        await write_usage(session=session, records=[rec])
        await prune_usage(session=session, record_days=7)
        left = (await session.execute(select(UsageRollup.granularity))).scalars().all()
        raw = (await session.execute(select(func.count()).select_from(UsageRecord))).scalar_one()
    assert sorted(left) == ["day", "hour"] and raw == 0  # minute rollups: 7 days; hours: 400 days


async def test_gpu_history_samples_ready_workers_and_prunes(db: Database) -> None:
    status = {"cpu": {"utilization_rate": 30.0}, "memory": {"total": 100, "used": 40},
              "gpu_devices": [{"index": 0, "memory_total": 80, "memory_used": 20, "core_utilization": 90.0,
                               "temperature": 60.0, "power_watts": 250.5}]}  # fmt: skip
    async with db.session() as session:
        session.add(Worker(name="w1", state=WorkerState.READY, status=status))
        session.add(Worker(name="w2", state=WorkerState.UNREACHABLE, status=status))
        await session.commit()
        assert await sample_gpus(session=session, retention_days=7) == 2  # host + one GPU of the ready worker
        session.add(GPUSample(time=utcnow() - timedelta(days=8), worker_id=1, worker_name="w1", gpu_index=0))
        await session.commit()
        await sample_gpus(session=session, retention_days=7)
        history = await gpu_history(session=session, start=None, end=None, worker_id=None, interval_seconds=60,
                                    retention_days=7)  # fmt: skip
        total = (await session.execute(select(func.count()).select_from(GPUSample))).scalar_one()
    assert total == 4  # the 8-day-old sample was pruned
    series = {s.gpu_index: s for s in history.series}
    assert series[0].utilization == [90.0, 90.0] and series[0].temperature == [60.0, 60.0]
    assert series[0].power == [250.5, 250.5] and series[-1].power == [None, None]
    assert series[-1].memory_used == [40, 40] and series[-1].worker_name == "w1"


def _many(n: int) -> list[dict[str, Any]]:
    """n records over 5 hours: 3 users, 4 keys, 5 models, some errors, tokens that differ per record."""
    return [
        _row(created_at=T0 + timedelta(seconds=i * 18_000 // n), user_id=1 + i % 2, api_key_id=i % 4,
             model=f"m{i % 5}", route="/v1/chat/completions", status=500 if i % 11 == 0 else 200,
             prompt_tokens=i % 13, completion_tokens=i % 7, total_tokens=i % 13 + i % 7, latency_ms=1.5)
        for i in range(n)
    ]  # fmt: skip


async def test_rollups_of_many_batches_sum_to_their_records(db: Database) -> None:
    """The writer's batches (500 at a time, rollup rows shared across batches) add up to exactly the sums of
    the raw records, per group and per bucket, at every granularity."""
    records = _many(3_000)
    for start in range(0, len(records), 500):
        async with db.session() as session:
            await write_usage(session=session, records=records[start : start + 500])
    groups = (UsageGroup.MODEL, UsageGroup.USER, UsageGroup.API_KEY)
    for gran in Granularity:
        expected: dict[tuple[Any, ...], list[int]] = {}
        for r in records:
            key = (bucket_of(r["created_at"], gran), r["model"], r["user_id"], r["api_key_id"])
            sums = expected.setdefault(key, [0, 0, 0, 0, 0])
            for i, value in enumerate((1, int(r["status"] >= 400), r["prompt_tokens"], r["completion_tokens"],
                                       r["total_tokens"])):  # fmt: skip
                sums[i] += value
        report = await _report(db, 1, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), group_by=groups,
                               granularity=gran)  # fmt: skip
        got = {(i.bucket, i.model, i.user_id, i.api_key_id): [i.api_requests, i.errors, i.input_tokens,
               i.output_tokens, i.total_tokens] for i in report.items}  # type: ignore[attr-defined]  # fmt: skip
        assert got == expected, gran
        assert report.summary.api_requests == len(records)  # type: ignore[attr-defined]
