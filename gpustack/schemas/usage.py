"""Usage metering tables and DTOs: one row per OpenAI request, and per minute/hour/day rollups."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

NO_KEY = 0  # api_key_id of a request made with user credentials (Basic auth or a session) instead of a key


class Granularity(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


def _bigint() -> object:
    return Field(default=0, sa_column=Column(BigInteger(), nullable=False, default=0))


class UsageRecord(SQLModel, table=True):
    """One OpenAI request as the gateway saw it (kept for `usage_retention_days`)."""

    __tablename__ = "usage_records"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(DateTime(), nullable=False, index=True))
    user_id: int = Field(index=True)
    api_key_id: int = NO_KEY
    model: str = Field(max_length=255)
    route: str = Field(max_length=64)
    status: int
    prompt_tokens: int = _bigint()  # type: ignore[assignment]
    completion_tokens: int = _bigint()  # type: ignore[assignment]
    total_tokens: int = _bigint()  # type: ignore[assignment]
    estimated: bool = False  # the engine reported no usage: counted by the gateway (docs/observability.md)
    latency_ms: float = 0.0
    ttft_ms: float | None = None


class UsageRollup(SQLModel, table=True):
    """Sums of the records of one bucket (minute, hour or day) per user, key, model and route."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        UniqueConstraint("granularity", "bucket", "user_id", "api_key_id", "model", "route", name="uq_usage_rollup"),
        Index("ix_usage_rollups_lookup", "granularity", "bucket"),
    )
    id: int | None = Field(default=None, primary_key=True)
    granularity: str = Field(max_length=8)
    bucket: datetime = Field(sa_column=Column(DateTime(), nullable=False))
    user_id: int
    api_key_id: int = NO_KEY
    model: str = Field(max_length=255)
    route: str = Field(max_length=64)
    requests: int = _bigint()  # type: ignore[assignment]
    errors: int = _bigint()  # type: ignore[assignment]
    prompt_tokens: int = _bigint()  # type: ignore[assignment]
    completion_tokens: int = _bigint()  # type: ignore[assignment]
    total_tokens: int = _bigint()  # type: ignore[assignment]
    latency_ms_sum: float = 0.0


class UsageGroup(StrEnum):
    MODEL = "model"
    USER = "user"
    API_KEY = "api_key"
    ROUTE = "route"


class UsageItem(BaseModel):
    """One group of a usage query (token names as GPUStack's usage breakdown uses them)."""

    bucket: datetime | None = None
    model: str | None = None
    user_id: int | None = None
    user_name: str | None = None
    api_key_id: int | None = None
    api_key_name: str | None = None
    route: str | None = None
    api_requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    avg_latency_ms: float = 0.0


class UsageSummary(BaseModel):
    api_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    models_called: int = 0


class UsageReport(BaseModel):
    start: datetime
    end: datetime
    granularity: Granularity
    group_by: list[UsageGroup]
    summary: UsageSummary
    items: list[UsageItem]
