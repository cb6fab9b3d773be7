"""Column helpers, timestamps and pagination shared by all resource schemas."""

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import JSON, Column, DateTime, String
from sqlmodel import Field

T = TypeVar("T")

# Ids are 32-bit INTEGER columns on PostgreSQL/MySQL: a larger id cannot exist (and breaks the query).
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """Naive UTC, second precision: every backend stores and compares it the same way."""
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def json_field(default_factory: Any) -> Any:
    """A JSON column with a default built per row."""
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def nullable_json_field() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(), nullable=False))


def updated_at_field() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(), nullable=False, onupdate=utcnow),
    )


class Pagination(BaseModel):
    """GPUStack's keys: `perPage` and `totalPage`."""

    page: int
    perPage: int  # noqa: N815
    total: int
    totalPage: int  # noqa: N815


class PaginatedList(BaseModel, Generic[T]):
    items: list[T]
    pagination: Pagination


def enum_field(default: Any, **kwargs: Any) -> Any:
    """Enums are stored by value as plain strings, so new values need no schema change."""
    return Field(default=default, sa_column=Column(String(32), nullable=False, **kwargs))


def optional_datetime_field() -> Any:
    return Field(default=None, sa_column=Column(DateTime(), nullable=True))


# SQLite would hand a deleted row's id to the next insert; watchers and workers track rows by id, so a
# reused id could be mistaken for the old row. PostgreSQL and MySQL never reuse ids.
NO_ID_REUSE = {"sqlite_autoincrement": True}
