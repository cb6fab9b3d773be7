"""GPUStack's usage API shapes (/v2/usage/meta, /breakdown, /summary, export): DTOs only, read from day rollups."""

import datetime as dt

from pydantic import BaseModel, Field

# GPUStack's dimensions; a "route" is what clients call a model by, here the model's name.
DIMENSIONS = ("date", "user", "api_key", "route")
METRICS = ("input_tokens", "output_tokens", "total_tokens", "api_requests")
GRANULARITIES = ("day",)


class UsageIdentityValue(BaseModel):
    user_name: str | None = None
    api_key_name: str | None = None
    access_key: str | None = None
    api_key_is_custom: bool | None = None
    route_name: str | None = None
    organization_name: str | None = None
    organization_kind: str | None = None
    group_name: str | None = None


class UsageIdentityCurrent(BaseModel):
    user_id: int | None = None
    api_key_id: int | None = None
    route_id: int | None = None
    organization_id: int | None = None
    group_id: int | None = None


class UsageIdentity(BaseModel):
    value: UsageIdentityValue
    current: UsageIdentityCurrent | None = None  # None: the user, key or model no longer exists


class UsageFilterItem(BaseModel):
    identity: UsageIdentity


class UsageFilterRequest(BaseModel):
    users: list[UsageFilterItem] = []
    api_keys: list[UsageFilterItem] = []
    routes: list[UsageFilterItem] = []
    organizations: list[UsageFilterItem] = []
    user_groups: list[UsageFilterItem] = []


class UsageBreakdownRequest(BaseModel):
    start_date: dt.date
    end_date: dt.date  # inclusive
    filters: UsageFilterRequest = UsageFilterRequest()
    scope: str = "all"
    group_by: list[str]
    granularity: str | None = None
    sort_by: str | None = "-total_tokens"
    page: int = Field(default=1, ge=1)
    perPage: int = Field(default=20, ge=1, le=1000)  # noqa: N815 (GPUStack's name)


class UsageExportSheet(BaseModel):
    key: str
    group_by: list[str]
    name: str | None = None
    sort_by: str | None = None


class UsageExportRequest(BaseModel):
    format: str = "xlsx"
    split: str | None = None
    sheets: list[UsageExportSheet] | None = None
    group_by: list[str] | None = None
    start_date: dt.date
    end_date: dt.date
    filters: UsageFilterRequest = UsageFilterRequest()
    scope: str = "all"
    granularity: str | None = None
    sort_by: str | None = None


class UsageBreakdownDateDimension(BaseModel):
    value: dt.date
    label: str
    deleted: bool = False


class UsageBreakdownDimension(BaseModel):
    identity: UsageIdentity | None = None
    label: str
    deleted: bool


class UsageBreakdownItem(BaseModel):
    date: UsageBreakdownDateDimension | None = None
    user: UsageBreakdownDimension | None = None
    api_key: UsageBreakdownDimension | None = None
    route: UsageBreakdownDimension | None = None
    organization: UsageBreakdownDimension | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    input_cached_tokens: int = 0
    total_tokens: int = 0
    api_requests: int = 0
    avg_tokens_per_request: float = 0.0
    models_called: int | None = None
    api_keys_used: int | None = None
    last_active: dt.date | None = None


class UsageTotals(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    input_cached_tokens: int = 0
    total_tokens: int = 0
    api_requests: int = 0
    models_called: int = 0


class Pagination(BaseModel):
    page: int
    perPage: int  # noqa: N815 (GPUStack's name)
    total: int
    totalPage: int  # noqa: N815


class UsageBreakdownResponse(BaseModel):
    summary: UsageTotals
    group_by: list[str]
    granularity: str | None = None
    pagination: Pagination
    items: list[UsageBreakdownItem]


class UsageOption(BaseModel):
    key: str
    label: str


class UsageFilterOption(BaseModel):
    identity: UsageIdentity
    label: str
    deleted: bool


class UsageFilters(BaseModel):
    users: list[UsageFilterOption] = []
    api_keys: list[UsageFilterOption] = []
    routes: list[UsageFilterOption] = []
    organizations: list[UsageFilterOption] = []
    user_groups: list[UsageFilterOption] = []


class UsageMetaResponse(BaseModel):
    metrics: list[UsageOption]
    granularities: list[UsageOption]
    group_bys: list[UsageOption]
    filters: UsageFilters


class UsageExportColumn(BaseModel):
    key: str
    title: str


class UsageExportSheetEstimate(BaseModel):
    key: str
    name: str | None = None
    total: int = 0
    columns: list[UsageExportColumn] = []
    available: bool = True
    reason: str | None = None


class UsageExportEstimateResponse(BaseModel):
    sheets: list[UsageExportSheetEstimate]
    total: int = 0
    soft_limit: int = 0
    hard_limit: int = 0
    effective_format: str = "csv"
    suggested_max_days: int | None = None
    suggestions: list[dict[str, object]] = []
    split_parts: int | None = None
    exceeds_soft_limit: bool = False
    exceeds_hard_limit: bool = False
