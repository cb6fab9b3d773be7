"""Usage rollup and query: 10,000 metered requests through the real writer path on SQLite and PostgreSQL.

For each database (a scratch database, migrated, dropped afterwards): queues 10,000 requests in the gateway's
meter (spread over one day, 7 models, 20 users, 40 API keys) and times the writer's flush that inserts the
records and adds them to their minute/hour/day rollups, once as one batch and once as the writer does under
load (batches of 500); then times the `GET /v2/usage` query (the service it calls) grouped by model, user and
API key over the day, and over a 90-minute range that is answered from minute rollups, and the day's query
through a real server over HTTP. Target: each query < 100 ms.
Run: `.venv/bin/python benchmarks/usage_rollup.py [--backends sqlite postgresql] [--repeat N]`.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpustack.gateway.metering import BATCH, Meter, Metered, flush  # noqa: E402
from gpustack.schemas.usage import UsageGroup  # noqa: E402
from gpustack.schemas.users import User  # noqa: E402
from gpustack.server.db import Database  # noqa: E402
from gpustack.server.metrics import ServerMetrics  # noqa: E402
from gpustack.server.migrate import run_migrations  # noqa: E402
from gpustack.server.services.usage import UsageQuery, usage_report  # noqa: E402
from tests.utils.databases import temporary_database  # noqa: E402
from tests.utils.server import run_server  # noqa: E402

RECORDS = 10_000
DAY = datetime(2026, 3, 1)
ANSWER = b'{"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}}'


def _metered(i: int, day: datetime) -> Metered:
    m = Metered(1 + i % 20, 1 + i % 40, f"model-{i % 7}", "/v1/chat/completions", status=200, tail=ANSWER)
    m.wall = (day + timedelta(seconds=i * 86_400 / RECORDS)).replace(tzinfo=UTC).timestamp()
    m.latency = 0.05
    return m


async def _write(db: Database, day: datetime, batch: int) -> list[float]:
    """Seconds per flush of `batch` queued requests, until 10,000 are written."""
    meter = Meter(ServerMetrics())
    times = []
    for start in range(0, RECORDS, batch):
        for i in range(start, min(start + batch, RECORDS)):
            meter.finish(_metered(i, day))
        t0 = time.perf_counter()
        assert await flush(meter, db)
        times.append(time.perf_counter() - t0)
    return times


async def _query(db: Database, query: UsageQuery, repeat: int) -> tuple[float, int, int]:
    times, items, requests = [], 0, 0
    for _ in range(repeat):
        async with db.session() as session:
            viewer = await session.get(User, 1)
            assert viewer is not None
            t0 = time.perf_counter()
            report = await usage_report(session=session, viewer=viewer, query=query)
            times.append(time.perf_counter() - t0)
        items, requests = len(report.items), report.summary.api_requests
    return statistics.median(times), items, requests


async def _bench(url: str, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await run_migrations(db.engine)
        async with db.session() as session:
            session.add_all(User(username=f"user-{i}", hashed_password="x", is_admin=i == 1) for i in range(1, 21))
            await session.commit()
        one = await _write(db, DAY, RECORDS)
        batched = await _write(db, DAY + timedelta(days=1), BATCH)
        groups = (UsageGroup.MODEL, UsageGroup.USER, UsageGroup.API_KEY)
        day = UsageQuery(start=DAY, end=DAY + timedelta(days=1), group_by=groups)
        minutes = UsageQuery(start=DAY + timedelta(hours=6, minutes=15), end=DAY + timedelta(hours=7, minutes=45),
                             group_by=groups)  # fmt: skip
        return {
            "one": one[0],
            "batched": sum(batched),
            "per_batch": statistics.median(batched),
            "day": await _query(db, day, repeat),
            "minutes": await _query(db, minutes, repeat),
        }
    finally:
        await db.dispose()


def _http(url: str, data_dir: Path, repeat: int) -> tuple[float, int]:
    """The same day's query through a real server: `GET /v2/usage` with an API key (median of `repeat`)."""
    with run_server(data_dir, url) as server, server.admin() as admin:
        key = admin.post("/v2/api-keys", json={"name": "bench", "scope": ["management"]}).json()["value"]
        params = {"group_by": ["model", "user", "api_key"], "start": DAY.isoformat(),
                  "end": (DAY + timedelta(days=1)).isoformat()}  # fmt: skip
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            client.get("/v2/usage", params=params).raise_for_status()  # warm: the key cached, the plan prepared
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get("/v2/usage", params=params)
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
    return statistics.median(times), int(r.json()["summary"]["api_requests"])


def _print(backend: str, r: dict[str, Any]) -> None:
    print(f"{backend}:")
    print(f"  write + roll up {RECORDS} requests, one flush      : {r['one'] * 1000:8.1f} ms")
    print(f"  write + roll up {RECORDS} requests, {RECORDS // BATCH} flushes of {BATCH}: {r['batched'] * 1000:8.1f} ms "
          f"(median flush {r['per_batch'] * 1000:.1f} ms)")  # fmt: skip
    for name, label in (("day", "one day (hour rollups)"), ("minutes", "90 minutes (minute rollups)")):
        seconds, items, requests = r[name]
        print(f"  /v2/usage by model+user+key, {label:28}: {seconds * 1000:7.1f} ms median "
              f"({items} groups, {requests} requests)")  # fmt: skip
    seconds, requests = r["http"]
    print(f"  GET /v2/usage over HTTP (a real server), one day : {seconds * 1000:7.1f} ms median ({requests} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], help="sqlite, postgresql, mysql")
    parser.add_argument("--repeat", type=int, default=5, help="query repetitions (median)")
    args = parser.parse_args()
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp, temporary_database(backend, Path(tmp)) as url:
            result = asyncio.run(_bench(url, args.repeat))
            result["http"] = _http(url, Path(tmp) / "data", args.repeat)
            _print(backend, result)


if __name__ == "__main__":
    main()
