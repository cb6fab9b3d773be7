"""Async engine and session factory for SQLite, PostgreSQL and MySQL/MariaDB URLs."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)

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


def create_private_sqlite_file(url: str) -> None:
    """Creates a SQLite database file readable by its owner only (0600) before SQLite creates it with the
    umask's default; its -wal and -shm files inherit that mode. Other URLs are left alone."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+", 1)[0] != "sqlite" or not rest.startswith("/"):
        return
    path = rest[1:].split("?", 1)[0]
    if not path or path == ":memory:" or os.path.exists(path):
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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
        self.down_since: float | None = None  # monotonic time of the first failure of an ongoing outage

    def outage(self, exc: BaseException) -> None:
        """Records a failed database call; logs only the first of an outage."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.error("database unavailable, answering 503 until it is back: %s", str(exc).splitlines()[0][:300])

    async def check_recovered(self, session: AsyncSession) -> None:
        """During an outage, a cheap query tells whether it is over (logged once)."""
        if self.down_since is None:
            return
        try:
            await session.execute(text("SELECT 1"))
        except (DBAPIError, OSError):
            try:
                await session.rollback()  # the request's own queries then fail (503) the same way
            except (DBAPIError, OSError):
                pass
            return
        logger.warning("database available again after %.0fs", time.monotonic() - self.down_since)
        self.down_since = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        session = self.sessionmaker()
        try:
            yield session
        finally:
            await self._close(session)

    async def _close(self, session: AsyncSession) -> None:
        """Closing rolls back on the session's connection; when that connection died (the database went
        away mid-request) the answer may already be sent, so the failure is recorded, not raised."""
        try:
            await asyncio.shield(session.close())  # like AsyncSession's own exit: a cancelled request still closes
        except (DBAPIError, OSError) as exc:
            self.outage(exc)
            try:
                await session.invalidate()
            except (DBAPIError, OSError):
                pass

    async def dispose(self) -> None:
        await self.engine.dispose()
