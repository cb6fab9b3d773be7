"""Shared query helpers for services: fetch-or-404, pagination, integrity errors."""

import math
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlmodel import col, select

from gpustack.compat.paging import ALL_PAGES
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
    """Newest first (GPUStack's order: ids grow with creation time); page -1 is every row on one page."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    stmt = stmt.order_by(col(stmt.column_descriptions[0]["entity"].id).desc())
    if page != ALL_PAGES:
        page = max(1, page)
        stmt = stmt.offset((page - 1) * per_page).limit(per_page)
    rows = (await session.execute(stmt)).scalars().all()
    return PaginatedList(
        items=[public.model_validate(r, from_attributes=True) for r in rows],
        pagination=Pagination(page=page, perPage=per_page, total=total, totalPage=math.ceil(total / per_page)),
    )


async def commit_or_conflict(session: AsyncSession, message: str) -> None:
    """Commit; a unique-constraint race surfaces as 409 with `message`, not a 500."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(message) from None
