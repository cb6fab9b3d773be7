"""GPUStack's usage API over the day rollups: breakdown by date, user, API key and route (a model's name),
with filters, sorting and pages; the filter options (meta); the summary; CSV export and its estimate."""

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gpustack.core.errors import InvalidError
from gpustack.schemas.api_keys import ApiKey
from gpustack.schemas.models import Model
from gpustack.schemas.usage import NO_KEY, Granularity, UsageRollup
from gpustack.schemas.usage_breakdown import (
    DIMENSIONS,
    GRANULARITIES,
    METRICS,
    Pagination,
    UsageBreakdownDateDimension,
    UsageBreakdownDimension,
    UsageBreakdownItem,
    UsageBreakdownRequest,
    UsageBreakdownResponse,
    UsageExportColumn,
    UsageExportEstimateResponse,
    UsageExportRequest,
    UsageExportSheet,
    UsageExportSheetEstimate,
    UsageFilterOption,
    UsageFilterRequest,
    UsageFilters,
    UsageIdentity,
    UsageIdentityCurrent,
    UsageIdentityValue,
    UsageMetaResponse,
    UsageOption,
    UsageTotals,
)
from gpustack.schemas.users import User

MAX_DAYS = 3660
_KEYS: dict[str, Any] = {"date": UsageRollup.bucket, "user": UsageRollup.user_id, "api_key": UsageRollup.api_key_id,
                         "route": UsageRollup.model}  # fmt: skip
_SUMS = {"input_tokens": UsageRollup.prompt_tokens, "output_tokens": UsageRollup.completion_tokens,
         "total_tokens": UsageRollup.total_tokens, "api_requests": UsageRollup.requests}  # fmt: skip
SORTABLE = (*_SUMS, "avg_tokens_per_request", "models_called", "api_keys_used", "last_active")


@dataclass(frozen=True)
class BreakdownQuery:
    start_date: date
    end_date: date  # inclusive
    group_by: tuple[str, ...] = ()
    filters: UsageFilterRequest = field(default_factory=UsageFilterRequest)
    granularity: str | None = None
    sort_by: str | None = "-total_tokens"


def check(query: BreakdownQuery) -> tuple[datetime, datetime]:
    """The query's [start, end) in UTC; a 400 that says what is accepted otherwise."""
    if query.end_date < query.start_date:
        raise InvalidError(f"end_date ({query.end_date}) must not be before start_date ({query.start_date})")
    if (query.end_date - query.start_date).days > MAX_DAYS:
        raise InvalidError(f"the range is longer than {MAX_DAYS} days; ask for a shorter one")
    unknown = [g for g in query.group_by if g not in DIMENSIONS]
    if unknown:
        raise InvalidError(f"group_by {unknown} is not kept here; group by {', '.join(DIMENSIONS)}")
    if query.granularity not in (None, "day"):
        raise InvalidError(f"granularity '{query.granularity}' is not supported; use 'day' (or none)")
    sort = (query.sort_by or "-total_tokens").lstrip("-+")
    if sort not in SORTABLE and sort not in query.group_by:
        raise InvalidError(f"sort_by '{query.sort_by}' is not a column; use one of {', '.join(SORTABLE)}")
    f = query.filters
    if f.organizations or f.user_groups:
        raise InvalidError("organizations and user groups are not kept here; filter by users, api_keys or routes")
    return datetime.combine(query.start_date, time()), datetime.combine(query.end_date + timedelta(days=1), time())


def _ids(items: list[Any], attr: str) -> set[int]:
    return {getattr(i.identity.current, attr) for i in items if i.identity.current and
            getattr(i.identity.current, attr) is not None}  # fmt: skip


async def _where(session: AsyncSession, stmt: Any, viewer: User, filters: UsageFilterRequest) -> Any:
    if not viewer.is_admin:
        stmt = stmt.where(col(UsageRollup.user_id) == viewer.id)  # a user sees their own usage only
    if filters.users:
        stmt = stmt.where(col(UsageRollup.user_id).in_(_ids(filters.users, "user_id")))
    if filters.api_keys:
        stmt = stmt.where(col(UsageRollup.api_key_id).in_(_ids(filters.api_keys, "api_key_id")))
    if filters.routes:
        names = {i.identity.value.route_name for i in filters.routes if i.identity.value.route_name}
        if route_ids := _ids(filters.routes, "route_id"):
            found = await session.execute(select(col(Model.name)).where(col(Model.id).in_(route_ids)))
            names |= set(found.scalars())
        stmt = stmt.where(col(UsageRollup.model).in_(names))
    return stmt


async def rows(session: AsyncSession, viewer: User, query: BreakdownQuery) -> list[dict[str, Any]]:
    """One dict per group: its keys, sums, models called, keys used and last active day."""
    start, end = check(query)
    keys = [_KEYS[g].label(g) for g in query.group_by]
    stmt = select(
        *keys,
        *(func.sum(column).label(name) for name, column in _SUMS.items()),
        func.count(distinct(col(UsageRollup.model))).label("models_called"),
        func.count(distinct(col(UsageRollup.api_key_id))).label("api_keys_used"),
        func.max(UsageRollup.bucket).label("last_active"),
    ).where(
        col(UsageRollup.granularity) == Granularity.DAY.value,
        col(UsageRollup.bucket) >= start,
        col(UsageRollup.bucket) < end,
    )
    stmt = await _where(session, stmt, viewer, query.filters)
    if keys:
        stmt = stmt.group_by(*(_KEYS[g] for g in query.group_by))
    found = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
    return [r for r in found if r["api_requests"]]  # no group: one row of NULL sums when nothing matched


@dataclass
class Names:
    users: dict[int, str]
    keys: dict[int, tuple[str, str]]  # id: (name, access key)
    models: dict[str, int]


async def names(session: AsyncSession, found: list[dict[str, Any]]) -> Names:
    users = {r.get("user") for r in found} - {None}
    keys = {r.get("api_key") for r in found} - {None, NO_KEY}
    models = {r.get("route") for r in found} - {None}
    user_rows = await session.execute(select(col(User.id), col(User.username)).where(col(User.id).in_(users)))
    key_stmt = select(col(ApiKey.id), col(ApiKey.name), col(ApiKey.access_key)).where(col(ApiKey.id).in_(keys))
    model_rows = await session.execute(select(col(Model.name), col(Model.id)).where(col(Model.name).in_(models)))
    key_rows = (await session.execute(key_stmt)).all()
    return Names(
        users={r[0]: r[1] for r in user_rows.all() if r[0] is not None},
        keys={r[0]: (r[1], r[2]) for r in key_rows if r[0] is not None},
        models={r[0]: r[1] for r in model_rows.all() if r[1] is not None},
    )


def _dimension(kind: str, value: Any, n: Names) -> UsageBreakdownDimension:
    if kind == "user":
        name = n.users.get(value)
        ident = UsageIdentity(value=UsageIdentityValue(user_name=name or f"user {value}"),
                              current=UsageIdentityCurrent(user_id=value) if name else None)  # fmt: skip
        return UsageBreakdownDimension(identity=ident, label=ident.value.user_name or "", deleted=name is None)
    if kind == "api_key":
        if value == NO_KEY:  # made with user credentials, no key
            ident = UsageIdentity(value=UsageIdentityValue(api_key_name="(no API key)"), current=None)
            return UsageBreakdownDimension(identity=ident, label="(no API key)", deleted=False)
        key = n.keys.get(value)
        ident = UsageIdentity(
            value=UsageIdentityValue(api_key_name=key[0] if key else f"API key {value}",
                                     access_key=key[1] if key else None, api_key_is_custom=False),
            current=UsageIdentityCurrent(api_key_id=value) if key else None,
        )  # fmt: skip
        return UsageBreakdownDimension(identity=ident, label=ident.value.api_key_name or "", deleted=key is None)
    model_id = n.models.get(value)
    ident = UsageIdentity(value=UsageIdentityValue(route_name=value),
                          current=UsageIdentityCurrent(route_id=model_id) if model_id else None)  # fmt: skip
    return UsageBreakdownDimension(identity=ident, label=value, deleted=model_id is None)


def item(row: dict[str, Any], n: Names) -> UsageBreakdownItem:
    out = UsageBreakdownItem(**{name: int(row[name] or 0) for name in _SUMS})
    out.avg_tokens_per_request = round(out.total_tokens / out.api_requests, 3) if out.api_requests else 0.0
    out.models_called, out.api_keys_used = int(row["models_called"]), int(row["api_keys_used"])
    out.last_active = row["last_active"].date() if row["last_active"] else None
    if "date" in row:
        day = row["date"].date()
        out.date = UsageBreakdownDateDimension(value=day, label=day.isoformat())
    for kind in ("user", "api_key", "route"):
        if kind in row:
            setattr(out, kind, _dimension(kind, row[kind], n))
    return out


def sort(items: list[UsageBreakdownItem], sort_by: str | None) -> list[UsageBreakdownItem]:
    name = (sort_by or "-total_tokens").lstrip("-+")

    def key(i: UsageBreakdownItem) -> Any:
        value = getattr(i, name)
        if isinstance(value, UsageBreakdownDimension):
            return value.label
        return value.value if isinstance(value, UsageBreakdownDateDimension) else (value or 0)

    return sorted(items, key=key, reverse=(sort_by or "-").startswith("-"))


def totals(found: list[dict[str, Any]], models_called: int) -> UsageTotals:
    sums = {name: sum(int(r[name] or 0) for r in found) for name in _SUMS}
    return UsageTotals(**sums, models_called=models_called)


async def breakdown_items(session: AsyncSession, viewer: User, query: BreakdownQuery) -> list[UsageBreakdownItem]:
    found = await rows(session, viewer, query)
    n = await names(session, found)
    return sort([item(r, n) for r in found], query.sort_by)


def csv_text(items: list[UsageBreakdownItem], group_by: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*group_by, *EXPORT_METRICS])
    for i in items:
        labels = [getattr(i, g).label if getattr(i, g) is not None else "" for g in group_by]
        writer.writerow([*labels, *(getattr(i, m) for m in EXPORT_METRICS)])
    return out.getvalue()


EXPORT_METRICS = ("api_requests", "input_tokens", "output_tokens", "total_tokens", "avg_tokens_per_request")
EXPORT_LIMIT = 100_000  # rows of one export (GPUStack's estimate reports it as the hard limit)


def _query(
    request: UsageBreakdownRequest | UsageExportRequest, group_by: list[str], sort_by: str | None
) -> BreakdownQuery:
    return BreakdownQuery(request.start_date, request.end_date, tuple(dict.fromkeys(group_by)), request.filters,
                          request.granularity, sort_by)  # fmt: skip


async def usage_breakdown(
    *, session: AsyncSession, viewer: User, request: UsageBreakdownRequest
) -> UsageBreakdownResponse:
    """One page of the groups, sorted; the summary covers every group."""
    query = _query(request, request.group_by, request.sort_by)
    found = await rows(session, viewer, query)
    n = await names(session, found)
    items = sort([item(r, n) for r in found], query.sort_by)
    everything = await rows(session, viewer, BreakdownQuery(query.start_date, query.end_date, (), query.filters))
    models = int(everything[0]["models_called"]) if everything else 0
    first = (request.page - 1) * request.perPage
    pages = Pagination(page=request.page, perPage=request.perPage, total=len(items),
                       totalPage=-(-len(items) // request.perPage))  # fmt: skip
    return UsageBreakdownResponse(summary=totals(found, models), group_by=list(query.group_by),
                                  granularity=query.granularity, pagination=pages,
                                  items=items[first : first + request.perPage])  # fmt: skip


async def usage_summary(*, session: AsyncSession, viewer: User, start_date: date, end_date: date) -> UsageTotals:
    found = await rows(session, viewer, BreakdownQuery(start_date, end_date))
    return totals(found, int(found[0]["models_called"]) if found else 0)


def _options(kind: str, n: Names, values: set[Any]) -> list[UsageFilterOption]:
    out = []
    for value in sorted(values, key=str):
        dim = _dimension(kind, value, n)
        if dim.identity is not None:
            out.append(UsageFilterOption(identity=dim.identity, label=dim.label, deleted=dim.deleted))
    return out


async def usage_meta(*, session: AsyncSession, viewer: User) -> UsageMetaResponse:
    """What can be asked for: metrics, granularities, groupings, and the users, keys and routes with usage."""
    stmt = (
        select(col(UsageRollup.user_id), col(UsageRollup.api_key_id), col(UsageRollup.model))
        .distinct()
        .where(col(UsageRollup.granularity) == Granularity.DAY.value)
    )
    stmt = await _where(session, stmt, viewer, UsageFilterRequest())
    seen = (await session.execute(stmt)).all()
    found = [{"user": r[0], "api_key": r[1], "route": r[2]} for r in seen]
    n = await names(session, found)
    label = {"date": "Date", "user": "User", "api_key": "API key", "route": "Route (model)"}
    return UsageMetaResponse(
        metrics=[UsageOption(key=m, label=m.replace("_", " ").capitalize()) for m in METRICS],
        granularities=[UsageOption(key=g, label=g.capitalize()) for g in GRANULARITIES],
        group_bys=[UsageOption(key=d, label=label[d]) for d in DIMENSIONS],
        filters=UsageFilters(users=_options("user", n, {r[0] for r in seen}),
                             api_keys=_options("api_key", n, {r[1] for r in seen}),
                             routes=_options("route", n, {r[2] for r in seen})),
    )  # fmt: skip


def _sheets(request: UsageExportRequest) -> list[UsageExportSheet]:
    if request.format.lower() != "csv":
        raise InvalidError(f"format '{request.format}' is not produced here; ask for format 'csv'")
    if request.sheets:
        if len(request.sheets) > 1:
            raise InvalidError("a CSV file holds one table: export one sheet per request")
        return request.sheets
    return [UsageExportSheet(key="usage", group_by=request.group_by or ["route"], sort_by=request.sort_by)]


async def export_breakdown(*, session: AsyncSession, viewer: User, request: UsageExportRequest) -> str:
    """The breakdown of the one sheet asked for as CSV: a column per grouping, then the metrics."""
    (sheet,) = _sheets(request)
    query = _query(request, sheet.group_by, sheet.sort_by or request.sort_by)
    items = await breakdown_items(session, viewer, query)
    if len(items) > EXPORT_LIMIT:
        raise InvalidError(f"{len(items)} rows are more than {EXPORT_LIMIT}; export a shorter range")
    return csv_text(items, query.group_by)


async def estimate_export(
    *, session: AsyncSession, viewer: User, request: UsageExportRequest
) -> UsageExportEstimateResponse:
    """Rows and columns each sheet of an export would have, before it is asked for."""
    estimates = []
    for sheet in _sheets(request):
        query = _query(request, sheet.group_by, sheet.sort_by or request.sort_by)
        count = len(await rows(session, viewer, query))
        columns = [UsageExportColumn(key=k, title=k.replace("_", " ")) for k in (*query.group_by, *EXPORT_METRICS)]
        estimates.append(UsageExportSheetEstimate(key=sheet.key, name=sheet.name, total=count, columns=columns))
    total = sum(e.total for e in estimates)
    return UsageExportEstimateResponse(sheets=estimates, total=total, soft_limit=EXPORT_LIMIT, hard_limit=EXPORT_LIMIT,
                                       effective_format="csv", exceeds_soft_limit=total > EXPORT_LIMIT,
                                       exceeds_hard_limit=total > EXPORT_LIMIT)  # fmt: skip
