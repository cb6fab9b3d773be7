"""Shared query helpers for services: fetch-or-404, pagination, integrity errors."""

import math
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlmodel import select

from gpustack.core.errors import ConflictError, NotFoundError
from gpustack.schemas.common import MAX_ID, PaginatedList, Pagination

T = TypeVar("T")
MAX_PER_PAGE = 1000


async def get_or_404(session: AsyncSession, cls: type[T], obj_id: int, label: str) -> T:
    obj = await session.get(cls, obj_id) if 0 < obj_id <= MAX_ID else None
    if obj is None:
        raise NotFoundError(f"{label} {obj_id} not found")
    return obj


async def paginate(
    session: AsyncSession, stmt: Select[Any], *, page: int, per_page: int, public: type[Any]
) -> PaginatedList[Any]:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (await session.execute(stmt.offset((page - 1) * per_page).limit(per_page))).scalars().all()
    return PaginatedList(
        items=[public.model_validate(r, from_attributes=True) for r in rows],
        pagination=Pagination(
            page=page, per_page=per_page, total=total, total_page=max(1, math.ceil(total / per_page))
        ),
    )


async def commit_or_conflict(session: AsyncSession, message: str) -> None:
    """Commit; a unique-constraint race surfaces as 409 with `message`, not a 500."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(message) from None
