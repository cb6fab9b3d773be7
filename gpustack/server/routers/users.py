"""User routes under /v2/users (admin) and /v2/users/me (self)."""

from fastapi import APIRouter, Request, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.users import PasswordChange, User, UserCreate, UserPublic, UserSelfUpdate, UserUpdate
from gpustack.server.auth import AdminUser, CurrentUser, SessionDep
from gpustack.server.services import users as service

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic)
async def me(user: CurrentUser) -> User:
    return user


@router.put("/me", response_model=UserPublic)
async def update_me(data: UserSelfUpdate, session: SessionDep, user: CurrentUser) -> User:
    return await service.update_me(session=session, user=user, data=data)


@router.post("/me/password", response_model=UserPublic)
async def change_password(data: PasswordChange, request: Request, session: SessionDep, user: CurrentUser) -> User:
    data_dir = request.app.state.config.data_dir
    return await service.change_password(session=session, user=user, data=data, data_dir=data_dir)


@router.get("", response_model=PaginatedList[UserPublic])
async def list_users(
    session: SessionDep, _a: AdminUser, paging: Paging, search: str | None = None
) -> PaginatedList[UserPublic]:
    return await service.list_users(session=session, page=paging.page, per_page=paging.per_page, search=search)


@router.post("", response_model=UserPublic, status_code=201)
async def create_user(data: UserCreate, session: SessionDep, _a: AdminUser) -> User:
    return await service.create_user(session=session, data=data)


@router.get("/{user_id}", response_model=UserPublic)
async def get_user(user_id: int, session: SessionDep, _a: AdminUser) -> User:
    return await service.get_user(session=session, user_id=user_id)


@router.put("/{user_id}", response_model=UserPublic)
async def update_user(user_id: int, data: UserUpdate, session: SessionDep, _a: AdminUser) -> User:
    return await service.update_user(session=session, user_id=user_id, data=data)


@router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: int, session: SessionDep, admin: AdminUser) -> Response:
    await service.delete_user(session=session, user_id=user_id, current=admin)
    return Response(status_code=204)
