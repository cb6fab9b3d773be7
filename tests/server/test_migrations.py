"""Alembic migrations on every backend: an empty database migrated to head matches the SQLModel schema."""

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from gpustack.schemas import load_all
from gpustack.server.db import create_engine
from gpustack.server.migrate import alembic_config, run_migrations
from tests.utils.databases import BACKENDS, temporary_database

load_all()
TABLES = {"users", "api_keys", "workers", "models", "model_instances", "model_files", "inference_backends"}


def _differences(sync_conn: Any) -> list[Any]:
    """Every difference autogenerate sees, types included. (MariaDB's JSON is a LONGTEXT alias, yet
    alembic reports no JSON/LONGTEXT change there, so no backend needs anything ignored.)"""
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    # column changes come grouped in a list per column; everything else is a tuple
    return [
        single
        for diff in compare_metadata(context, SQLModel.metadata)
        for single in (diff if isinstance(diff, list) else [diff])
    ]


def _state(sync_conn: Any) -> dict[str, Any]:
    return {
        "revision": MigrationContext.configure(sync_conn).get_current_revision(),
        "tables": set(inspect(sync_conn).get_table_names()) - {"alembic_version"},
        "diffs": _differences(sync_conn),
    }


def test_one_head_and_a_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, f"several heads, merge them: {script.get_heads()}"
    assert len(script.get_bases()) == 1, f"several bases: {script.get_bases()}"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrations_match_the_models(backend: str, tmp_path: Path) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with temporary_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            await run_migrations(engine)
            async with engine.connect() as conn:
                state = await conn.run_sync(_state)
            assert state["revision"] == head
            assert state["tables"] == set(SQLModel.metadata.tables) and TABLES <= state["tables"]
            assert state["diffs"] == [], "migrations and models differ; generate a migration"

            # running again at head is a no-op, and the history downgrades to nothing and back
            await run_migrations(engine)
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "base"))
            async with engine.connect() as conn:
                down = await conn.run_sync(_state)
            assert down["revision"] is None and down["tables"] == set()

            await run_migrations(engine)
            async with engine.connect() as conn:
                again = await conn.run_sync(_state)
            assert again["revision"] == head and again["diffs"] == []
        finally:
            await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_keys_from_before_scopes_keep_both_scopes(backend: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    with temporary_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            await run_migrations(engine, "0001")
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO users (username, is_admin, hashed_password, require_password_change, "
                        "created_at, updated_at) VALUES ('u', true, 'x', false, '2026-01-01', '2026-01-01')"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (name, access_key, allowed_model_names, hashed_secret_key, user_id, "
                        "created_at, updated_at) VALUES ('k', 'a', '[]', 'h', 1, '2026-01-01', '2026-01-01')"
                    )
                )
            await run_migrations(engine)
            async with engine.connect() as conn:
                scopes = (await conn.execute(text("SELECT scopes FROM api_keys"))).scalar_one()
                epoch = (await conn.execute(text("SELECT session_epoch FROM users"))).scalar_one()
            assert scopes == "inference,management" and epoch == 0
        finally:
            await engine.dispose()
