"""API key routes under /v2/api-keys: each user manages their own keys."""

from fastapi import APIRouter, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyUpdate
from gpustack.schemas.common import PaginatedList
from gpustack.server.auth import CurrentUser, SessionDep
from gpustack.server.services import api_keys as service

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get("", response_model=PaginatedList[ApiKeyPublic])
async def list_api_keys(
    session: SessionDep, user: CurrentUser, paging: Paging, search: str | None = None
) -> PaginatedList[ApiKeyPublic]:
    return await service.list_api_keys(
        session=session, user=user, page=paging.page, per_page=paging.per_page, search=search
    )


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(data: ApiKeyCreate, session: SessionDep, user: CurrentUser) -> ApiKeyCreated:
    return await service.create_api_key(session=session, user=user, data=data)


@router.put("/{key_id}", response_model=ApiKeyPublic)
async def update_api_key(key_id: int, data: ApiKeyUpdate, session: SessionDep, user: CurrentUser) -> ApiKey:
    return await service.update_api_key(session=session, user=user, key_id=key_id, data=data)


@router.delete("/{key_id}", status_code=204)
async def delete_api_key(key_id: int, session: SessionDep, user: CurrentUser) -> Response:
    await service.delete_api_key(session=session, user=user, key_id=key_id)
    return Response(status_code=204)
