"""Async engine and session factory for SQLite, PostgreSQL and MySQL/MariaDB URLs."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}


def async_url(url: str) -> str:
    """Map a plain URL (sqlite://, postgresql://, mysql://) to its async driver."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"invalid database URL: {url}")
    base = scheme.split("+", 1)[0]
    if base == "postgres":
        base = "postgresql"
    if base not in _DRIVERS:
        raise ValueError(f"unsupported database: {scheme} (use sqlite, postgresql or mysql)")
    return f"{_DRIVERS[base]}://{rest}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if full.startswith("mysql"):
        kwargs["pool_recycle"] = 3600
    engine = create_async_engine(full, **kwargs)
    if full.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """Owns the engine and hands out sessions; one per server process."""

    def __init__(self, url: str, bus: Any = None):
        self.url = url
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, class_=AsyncSession, info={"bus": bus}
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
