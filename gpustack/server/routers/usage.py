"""Usage routes under /v2/usage: metered OpenAI requests grouped over a time range, as JSON or CSV."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gpustack.schemas.common import MAX_ID
from gpustack.schemas.usage import Granularity, UsageGroup, UsageReport
from gpustack.server.auth import CurrentUser, SessionDep
from gpustack.server.services import usage as service

router = APIRouter(prefix="/usage", tags=["usage"])

Id = Annotated[int | None, Query(ge=0, le=MAX_ID)]


def _query(
    start: Annotated[datetime | None, Query(description="UTC, inclusive; default: end - 1 day")] = None,
    end: Annotated[datetime | None, Query(description="UTC, exclusive; default: now")] = None,
    group_by: Annotated[list[UsageGroup] | None, Query(description="model, user, api_key, route")] = None,
    granularity: Annotated[Granularity | None, Query(description="also split per minute/hour/day")] = None,
    model: Annotated[str | None, Query(max_length=255)] = None,
    user_id: Annotated[Id, Query(description="admins only; a user always sees their own")] = None,
    api_key_id: Annotated[Id, Query(description="0: requests made without a key")] = None,
) -> service.UsageQuery:
    groups = tuple(dict.fromkeys(group_by)) if group_by is not None else (UsageGroup.MODEL,)
    return service.UsageQuery(start, end, groups, granularity, model, user_id, api_key_id)


QueryDep = Annotated[service.UsageQuery, Depends(_query)]


@router.get("", response_model=UsageReport)
async def get_usage(session: SessionDep, user: CurrentUser, query: QueryDep) -> UsageReport:
    """Token and request counts grouped by model, user, API key or route; a user sees their own only."""
    return await service.usage_report(session=session, viewer=user, query=query)


@router.get("/export", response_class=Response)
async def export_usage(session: SessionDep, user: CurrentUser, query: QueryDep) -> Response:
    """The same report as CSV (one row per group and bucket)."""
    body = await service.usage_csv(session=session, viewer=user, query=query)
    disposition = 'attachment; filename="gpustack-usage.csv"'
    return Response(body, media_type="text/csv; charset=utf-8", headers={"content-disposition": disposition})
