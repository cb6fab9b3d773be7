"""GPU and host utilisation samples per worker, kept at a bounded resolution and retention."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlmodel import Field, SQLModel

HOST = -1  # gpu_index of a worker's CPU/RAM sample


class GPUSample(SQLModel, table=True):
    __tablename__ = "gpu_samples"
    __table_args__ = (Index("ix_gpu_samples_worker_time", "worker_id", "time"),)
    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(sa_column=Column(DateTime(), nullable=False, index=True))
    worker_id: int
    worker_name: str = Field(max_length=255)
    gpu_index: int = HOST
    utilization: float = 0.0  # percent: the GPU's core utilisation, or the host CPU's for HOST rows
    memory_used: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False, default=0))
    memory_total: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False, default=0))
    temperature: float | None = None
    power: float | None = None  # watts drawn, where the driver reports it


class GPUSeries(BaseModel):
    """One worker's GPU (or its host, gpu_index -1) over time: parallel lists, oldest first."""

    worker_id: int
    worker_name: str
    gpu_index: int
    time: list[datetime]
    utilization: list[float]
    memory_used: list[int]
    memory_total: list[int]
    temperature: list[float | None]
    power: list[float | None]  # watts; null where the driver does not report it


class GPUHistory(BaseModel):
    interval_seconds: float
    retention_days: int
    series: list[GPUSeries]
