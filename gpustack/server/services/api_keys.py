"""API key services: create (secret shown once), list, delete, and verify on requests."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from gpustack.core.errors import ConflictError, ForbiddenError, NotFoundError, UnauthorizedError
from gpustack.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyUpdate, Scope, scopes_of
from gpustack.schemas.common import MAX_ID, PaginatedList, utcnow
from gpustack.schemas.users import User
from gpustack.server.security import hash_secret, new_api_key, parse_api_key, verify_secret
from gpustack.server.services.common import commit_or_conflict, paginate


async def create_api_key(*, session: AsyncSession, user: User, data: ApiKeyCreate) -> ApiKeyCreated:
    exists = await session.execute(select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.name == data.name))
    if exists.first():
        raise ConflictError(f"you already have an API key named '{data.name}'")
    access, secret, value = new_api_key()
    expires = utcnow() + timedelta(seconds=data.expires_in_seconds) if data.expires_in_seconds else None
    key = ApiKey(
        name=data.name,
        description=data.description,
        access_key=access,
        hashed_secret_key=hash_secret(secret),
        expires_at=expires,
        allowed_model_names=data.allowed_model_names,
        scopes=data.stored_scopes(),
        user_id=user.id,  # type: ignore[arg-type]
    )
    session.add(key)
    await commit_or_conflict(session, "API key collision, try again")
    return ApiKeyCreated(**ApiKeyPublic.model_validate(key, from_attributes=True).model_dump(), value=value)


async def list_api_keys(
    *, session: AsyncSession, user: User, page: int, per_page: int, search: str | None = None
) -> PaginatedList[ApiKeyPublic]:
    stmt = select(ApiKey).where(ApiKey.user_id == user.id)
    if search:
        stmt = stmt.where(ApiKey.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    return await paginate(session, stmt, page=page, per_page=per_page, public=ApiKeyPublic)


async def _own_key(session: AsyncSession, user: User, key_id: int) -> ApiKey:
    """The caller's key (an admin's: anyone's); others' keys are reported missing, not forbidden."""
    key = await session.get(ApiKey, key_id) if 0 < key_id <= MAX_ID else None
    if key is None or (key.user_id != user.id and not user.is_admin):
        raise NotFoundError(f"API key {key_id} not found")
    return key


async def update_api_key(*, session: AsyncSession, user: User, key_id: int, data: ApiKeyUpdate) -> ApiKey:
    key = await _own_key(session, user, key_id)
    key.description = data.description
    key.allowed_model_names = data.allowed_model_names or []
    key.scopes = data.stored_scopes() or key.scopes
    await session.commit()
    return key


async def delete_api_key(*, session: AsyncSession, user: User, key_id: int) -> None:
    key = await _own_key(session, user, key_id)
    await session.delete(key)
    await session.commit()


async def verify_api_key(*, session: AsyncSession, value: str) -> tuple[User, ApiKey]:
    parsed = parse_api_key(value)
    if parsed is None:
        raise UnauthorizedError("invalid API key")
    key = (await session.execute(select(ApiKey).where(ApiKey.access_key == parsed[0]))).scalar_one_or_none()
    if key is None or not verify_secret(parsed[1], key.hashed_secret_key):
        raise UnauthorizedError("invalid API key")
    if key.expires_at is not None and key.expires_at < utcnow():
        raise UnauthorizedError("API key has expired")
    user = await session.get(User, key.user_id)
    if user is None:
        raise UnauthorizedError("invalid API key")
    return user, key


def require_scope(key: ApiKey, scope: Scope) -> None:
    """An API key works only where its scopes allow: inference (/v1) and/or management (/v2)."""
    if scope.value in scopes_of(key.scopes):
        return
    if scope == Scope.MANAGEMENT:
        raise ForbiddenError(
            "this API key is limited to inference (/v1); create one with the 'management' scope for /v2"
        )
    raise ForbiddenError("this API key is limited to the management API (/v2); create one with the 'inference' scope")
