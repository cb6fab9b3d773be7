"""Shared router parameters: id filters and watch streaming."""

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel

from gpustack.compat import watch as wire
from gpustack.schemas.clusters import check_cluster_id
from gpustack.schemas.common import MAX_ID
from gpustack.server.services.watch import Transform, watch

ClusterFilter = Annotated[
    int | None, Query(description="GPUStack's cluster id: this server has one"), AfterValidator(check_cluster_id)
]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only rows referencing this id")]
Watch = Annotated[bool, Query(description="stream current rows, then changes, as GPUStack watch events")]


def watch_response(
    request: Request, table: type[Any], public: type[BaseModel], transform: Transform | None = None, **filters: Any
) -> StreamingResponse:
    state = request.app.state
    present = {k: v for k, v in filters.items() if v is not None}
    extra = {"transform": transform} if transform else {}
    stream = watch(db=state.db, bus=state.bus, table=table, public=public, filters=present, **extra)
    return StreamingResponse(stream, media_type=wire.MEDIA_TYPE)
