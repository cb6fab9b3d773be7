"""Usage routes under /v2/usage: metered OpenAI requests grouped over a time range, as JSON or CSV."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gpustack.schemas.common import MAX_ID
from gpustack.schemas.usage import Granularity, UsageGroup, UsageReport
from gpustack.schemas.usage_breakdown import (
    UsageBreakdownRequest,
    UsageBreakdownResponse,
    UsageExportEstimateResponse,
    UsageExportRequest,
    UsageMetaResponse,
    UsageTotals,
)
from gpustack.server.auth import CurrentUser, SessionDep
from gpustack.server.services import usage as service
from gpustack.server.services import usage_breakdown as breakdown

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


# GPUStack's usage API (day rollups; a "route" is a model's name)


@router.get("/meta", response_model=UsageMetaResponse)
async def get_usage_meta(session: SessionDep, user: CurrentUser, scope: str = "all") -> UsageMetaResponse:
    """Metrics, granularities and groupings, and the users, API keys and routes that have usage."""
    return await breakdown.usage_meta(session=session, viewer=user)


@router.post("/breakdown", response_model=UsageBreakdownResponse)
async def get_usage_breakdown(
    session: SessionDep, user: CurrentUser, body: UsageBreakdownRequest
) -> UsageBreakdownResponse:
    """Usage grouped by date, user, API key and/or route between two dates (inclusive), a page at a time."""
    return await breakdown.usage_breakdown(session=session, viewer=user, request=body)


@router.get("/summary", response_model=UsageTotals)
async def get_usage_summary(
    session: SessionDep, user: CurrentUser, start_date: date, end_date: date, scope: str = "all"
) -> UsageTotals:
    """Requests and tokens between two dates (inclusive)."""
    return await breakdown.usage_summary(session=session, viewer=user, start_date=start_date, end_date=end_date)


@router.post("/breakdown/export", response_class=Response)
async def export_usage_breakdown(session: SessionDep, user: CurrentUser, body: UsageExportRequest) -> Response:
    """The breakdown of one sheet as a CSV file (format "csv"; xlsx is not produced here)."""
    text = await breakdown.export_breakdown(session=session, viewer=user, request=body)
    disposition = 'attachment; filename="gpustack-usage-breakdown.csv"'
    return Response(text, media_type="text/csv; charset=utf-8", headers={"content-disposition": disposition})


@router.post("/breakdown/export/estimate", response_model=UsageExportEstimateResponse)
async def estimate_usage_breakdown_export(
    session: SessionDep, user: CurrentUser, body: UsageExportRequest
) -> UsageExportEstimateResponse:
    """Rows and columns an export would have."""
    return await breakdown.estimate_export(session=session, viewer=user, request=body)
