"""Alembic environment: runs on a connection handed in by `run_migrations` (or a URL for the CLI)."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from gpustack.schemas import load_all

load_all()
target_metadata = SQLModel.metadata
config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
