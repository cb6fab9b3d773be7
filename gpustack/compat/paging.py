"""List parameters as GPUStack sends them: `page` (-1 = every row), `perPage` (or `per_page`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from pydantic import AfterValidator

from gpustack.schemas.common import MAX_ID

ALL_PAGES = -1
MAX_PER_PAGE = 1000


def _page(value: int) -> int:
    if value == 0:
        raise ValueError("pages count from 1; page=-1 lists every row")
    return value


PageQuery = Annotated[
    int, Query(ge=-1, le=MAX_ID, description="page number from 1; -1 lists every row"), AfterValidator(_page)
]
PerPageQuery = Annotated[int | None, Query(ge=1, le=MAX_PER_PAGE, description="items per page")]


@dataclass(frozen=True)
class PageParams:
    page: int  # -1: every row on one page
    per_page: int


def page_params(
    page: PageQuery = 1,
    per_page_camel: Annotated[PerPageQuery, Query(alias="perPage")] = None,
    per_page: Annotated[PerPageQuery, Query(include_in_schema=False)] = None,
) -> PageParams:
    """GPUStack's `perPage` wins; this project's earlier `per_page` is still read."""
    return PageParams(page=page, per_page=per_page_camel or per_page or 100)


Paging = Annotated[PageParams, Depends(page_params)]
