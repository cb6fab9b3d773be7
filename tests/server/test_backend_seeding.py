"""Seeding the built-in backends: idempotent, and an admin's override survives a restart's seeding."""

from pathlib import Path

import pytest
from sqlmodel import select

from gpustack.schemas.inference_backends import InferenceBackend
from gpustack.server.db import Database
from gpustack.server.migrate import run_migrations
from gpustack.server.services.inference_backends import seed_built_ins
from tests.utils.databases import BACKENDS, temporary_database


@pytest.mark.parametrize("backend", BACKENDS)
async def test_seeding_twice_keeps_overrides(backend: str, tmp_path: Path) -> None:
    with temporary_database(backend, tmp_path) as url:
        db = Database(url)
        try:
            await run_migrations(db.engine)
            async with db.session() as session:
                await seed_built_ins(session=session)
                vllm = (
                    await session.execute(select(InferenceBackend).where(InferenceBackend.backend_name == "vllm"))
                ).scalar_one()
                vllm.default_env = {"VLLM_LOGGING_LEVEL": "DEBUG"}
                await session.commit()
            async with db.session() as session:  # a restarted server seeds again
                await seed_built_ins(session=session)
            async with db.session() as session:
                rows = (await session.execute(select(InferenceBackend))).scalars().all()
            assert sorted(r.backend_name for r in rows) == sorted(
                ["vllm", "sglang", "mindie", "vox-box", "llama-box", "custom"]
            )
            assert next(r for r in rows if r.backend_name == "vllm").default_env == {"VLLM_LOGGING_LEVEL": "DEBUG"}
        finally:
            await db.engine.dispose()
