"""Throwaway databases on SQLite, a real PostgreSQL and a real MariaDB/MySQL server for tests."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("GPUSTACK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("GPUSTACK_TEST_MYSQL", "mysql://root@127.0.0.1:3306/")
BACKENDS = ["sqlite", "postgresql", "mysql"]


def _unavailable(what: str, exc: Exception) -> None:
    """In CI a missing server is a failure; on a laptop it is a skip with the reason."""
    message = f"{what} is not reachable ({exc}); .ci/run starts it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def _postgres() -> Iterator[str]:
    import psycopg

    name = f"gpustack_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN.replace("postgresql://", "postgresql://", 1), autocommit=True)
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_connect():  # type: ignore[no-untyped-def]
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(MYSQL_ADMIN.replace("mysql://", "mysql+pymysql://", 1))
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
    )


@contextmanager
def _mysql() -> Iterator[str]:
    import pymysql

    name = f"gpustack_test_{secrets.token_hex(4)}"
    try:
        conn = _mysql_connect()
    except pymysql.err.OperationalError as exc:
        _unavailable("MariaDB/MySQL", exc)
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield MYSQL_ADMIN.rstrip("/") + f"/{name}"
    finally:
        with _mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextmanager
def temporary_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A fresh, empty database URL for `backend`, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / 'test.db'}"
    elif backend == "postgresql":
        with _postgres() as url:
            yield url
    elif backend == "mysql":
        with _mysql() as url:
            yield url
    else:
        raise ValueError(backend)
