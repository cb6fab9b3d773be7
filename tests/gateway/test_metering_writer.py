"""The usage writer: a failed batch is kept and written by a later pass; tokens read from answers' ends."""

from pathlib import Path

from sqlalchemy import func, select

from gpustack.gateway.metering import Meter, Metered, flush, tokens_from_tail
from gpustack.schemas.usage import UsageRecord
from gpustack.server.db import Database
from gpustack.server.metrics import ServerMetrics
from gpustack.server.migrate import run_migrations


def _metered(i: int) -> Metered:
    tail = b'..."usage": {"prompt_tokens": 5, "completion_tokens": %d, "total_tokens": %d}}' % (i, 5 + i)
    return Metered(user_id=1, api_key_id=0, model="m", route="/v1/completions", status=200, tail=tail)


async def test_a_batch_the_database_refused_is_written_by_the_next_pass(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")  # not migrated yet: the insert fails
    meter = Meter(ServerMetrics())
    try:
        for i in range(3):
            meter.finish(_metered(i))
        assert await flush(meter, db) is False
        assert len(meter.queue) == 3
        assert meter.metrics.registry.get_sample_value("gpustack_usage_queue_length") == 3
        meter.finish(_metered(3))
        await run_migrations(db.engine)
        assert await flush(meter, db) is True and meter.queue == []
        async with db.session() as session:
            rows = (await session.execute(select(UsageRecord.completion_tokens).order_by(UsageRecord.id))).all()
            count = (await session.execute(select(func.count()).select_from(UsageRecord))).scalar_one()
        assert [r[0] for r in rows] == [0, 1, 2, 3] and count == 4  # the refused batch first, nothing twice
        assert meter.metrics.registry.get_sample_value("gpustack_completion_tokens_total", {"model": "m"}) == 6
        labels = {"model": "m", "route": "/v1/completions", "status": "200"}
        assert meter.metrics.registry.get_sample_value("gpustack_openai_requests_total", labels) == 4  # not 7
    finally:
        await db.dispose()


def test_tokens_come_from_the_last_usage_in_the_tail() -> None:
    assert tokens_from_tail(b'{"choices": [{"text": "\\"prompt_tokens\\": 99"}], "usage": {"prompt_tokens": 4, '
                            b'"completion_tokens": 2}}') == (4, 2)  # fmt: skip
    assert tokens_from_tail(b'{"data": [], "usage": {"prompt_tokens": 9, "total_tokens": 9}}') == (9, 0)
    assert tokens_from_tail(b'{"choices": []}') is None
