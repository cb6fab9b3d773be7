"""User services: bootstrap admin, CRUD, password changes and login checks."""

import asyncio
import logging
import secrets
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from gpustack.core.errors import ConflictError, InvalidError, TooManyRequestsError, UnauthorizedError
from gpustack.core.files import write_private_atomic
from gpustack.schemas.common import MAX_ID, PaginatedList
from gpustack.schemas.users import PasswordChange, User, UserCreate, UserPublic, UserSelfUpdate, UserUpdate
from gpustack.server.security import check_password, hash_password_async, sign_session, verify_session
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate
from gpustack.server.throttle import LoginThrottle

logger = logging.getLogger(__name__)
ADMIN_USERNAME = "admin"
INITIAL_PASSWORD_FILE = "initial_admin_password"
SESSION_TTL_SECONDS = 7 * 24 * 3600


async def bootstrap_admin(*, session: AsyncSession, password: str | None, data_dir: Path) -> None:
    """Creates `admin` once; without a bootstrap password a generated one is written to the data dir."""
    if (await session.execute(select(User.id).where(User.username == ADMIN_USERNAME))).first():
        return
    require_change = password is None
    if password is None:
        password = secrets.token_urlsafe(12)
        path = data_dir / INITIAL_PASSWORD_FILE
        write_private_atomic(path, password + "\n")
        logger.info("Generated the admin password; it is in %s", path)
    session.add(
        User(
            username=ADMIN_USERNAME,
            is_admin=True,
            hashed_password=await hash_password_async(password),
            require_password_change=require_change,
        )
    )
    await commit_or_conflict(session, "admin already exists")


async def authenticate(
    *, session: AsyncSession, username: str, password: str, throttle: LoginThrottle, address: str
) -> User:
    """Checks a password; refused (429) without hashing while the user or address failed too often."""
    try:
        throttle.check(username, address)
    except TooManyRequestsError as exc:
        await asyncio.sleep(min(1.0, exc.retry_after / 2))  # a hammering client waits, at no cost to us
        raise
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if not await check_password(password, user.hashed_password if user else None) or user is None:
        throttle.failed(username, address)
        raise UnauthorizedError("incorrect username or password")
    return user


async def login(
    *, session: AsyncSession, username: str, password: str, throttle: LoginThrottle, address: str, secret_key: bytes
) -> tuple[User, str]:
    """Checks the password and returns the user with a new session cookie value."""
    user = await authenticate(session=session, username=username, password=password, throttle=throttle, address=address)
    return user, sign_session(secret_key, user.id, SESSION_TTL_SECONDS, user.session_epoch)  # type: ignore[arg-type]


async def session_user(*, session: AsyncSession, secret_key: bytes, cookie: str) -> User | None:
    """The user of a valid session cookie that was not revoked (logout, password change) since."""
    found = verify_session(secret_key, cookie)
    if found is None or not 0 < found[0] <= MAX_ID:
        return None
    user = await session.get(User, found[0])
    return user if user is not None and user.session_epoch == found[1] else None


async def logout(*, session: AsyncSession, secret_key: bytes, cookie: str | None) -> None:
    """Ends every session of the cookie's user server-side (their cookies stop working, on every browser)."""
    user = await session_user(session=session, secret_key=secret_key, cookie=cookie) if cookie else None
    if user is not None:
        user.session_epoch += 1
        await session.commit()


async def create_user(*, session: AsyncSession, data: UserCreate) -> User:
    if (await session.execute(select(User.id).where(User.username == data.username))).first():
        raise ConflictError(f"a user named '{data.username}' already exists")
    user = User(
        username=data.username,
        full_name=data.full_name,
        is_admin=data.is_admin,
        hashed_password=await hash_password_async(data.password),
        require_password_change=data.require_password_change,
    )
    session.add(user)
    await commit_or_conflict(session, f"a user named '{data.username}' already exists")
    return user


async def list_users(
    *, session: AsyncSession, page: int, per_page: int, search: str | None = None
) -> PaginatedList[UserPublic]:
    stmt = select(User)
    if search:
        stmt = stmt.where(User.username.contains(search, autoescape=True))  # type: ignore[attr-defined]
    return await paginate(session, stmt, page=page, per_page=per_page, public=UserPublic)


async def get_user(*, session: AsyncSession, user_id: int) -> User:
    return await get_or_404(session, User, user_id, "user")


async def _admin_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).where(User.is_admin.is_(True)))).scalar_one()  # type: ignore[attr-defined]


async def update_user(*, session: AsyncSession, user_id: int, data: UserUpdate) -> User:
    user = await get_or_404(session, User, user_id, "user")
    if data.username is not None and data.username != user.username:
        raise InvalidError(f"user {user_id} is '{user.username}'; user names cannot be changed")
    if data.is_admin is False and user.is_admin and await _admin_count(session) <= 1:
        raise InvalidError("cannot remove admin rights from the last admin")
    if data.full_name is not None:
        user.full_name = data.full_name
    if data.is_admin is not None:
        user.is_admin = data.is_admin
    if data.password is not None:
        user.hashed_password = await hash_password_async(data.password)
        user.session_epoch += 1
    if data.require_password_change is not None:
        user.require_password_change = data.require_password_change
    await session.commit()
    return user


async def update_me(*, session: AsyncSession, user: User, data: UserSelfUpdate) -> User:
    if data.password is not None:
        raise InvalidError(
            "a password is changed with POST /auth/update-password (or /v2/users/me/password), "
            "which asks for the current one"
        )
    user.full_name = data.full_name
    session.add(user)
    await session.commit()
    return user


async def change_password(
    *, session: AsyncSession, user: User, data: PasswordChange, data_dir: Path | None = None
) -> User:
    """Sets a new password; the admin's generated `initial_admin_password` file goes once it is stale."""
    if not await check_password(data.current_password, user.hashed_password):
        raise InvalidError("current password is incorrect")
    user.hashed_password = await hash_password_async(data.new_password)
    user.require_password_change = False
    user.session_epoch += 1  # other sessions end; the caller logs in again
    session.add(user)
    await session.commit()
    if data_dir is not None and user.username == ADMIN_USERNAME:
        (data_dir / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)
    return user


async def delete_user(*, session: AsyncSession, user_id: int, current: User) -> None:
    user = await get_or_404(session, User, user_id, "user")
    if user.id == current.id:
        raise InvalidError("you cannot delete yourself")
    if user.is_admin and await _admin_count(session) <= 1:
        raise InvalidError("cannot delete the last admin")
    await session.delete(user)
    await session.commit()


async def reset_password(*, session: AsyncSession, username: str, password: str) -> None:
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None:
        raise InvalidError(f"no user named '{username}'")
    user.hashed_password = await hash_password_async(password)
    user.session_epoch += 1
    await session.commit()
