"""A migrated database per backend for the controller tests, emptied before each test."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker
from gpustack.server.db import Database
from gpustack.server.migrate import run_migrations
from tests.utils.databases import BACKENDS, temporary_database
from tests.utils.tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="module", params=BACKENDS)
async def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    tmp = tmp_path_factory.mktemp(f"ctrl-{request.param}")
    with temporary_database(request.param, tmp) as url:
        database = Database(url)
        try:
            await run_migrations(database.engine)
            yield database
        finally:
            await database.dispose()


@pytest.fixture
async def db(migrated_db: Database) -> Database:
    """The backend's database with no instances, models or workers left from an earlier test."""
    async with migrated_db.session() as session:
        for table in (ModelInstance, Model, Worker):
            await session.execute(delete(table))
        await session.commit()
    return migrated_db


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
