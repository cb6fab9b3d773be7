"""User table and DTOs; passwords are stored only as salted hashes."""

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from gpustack.schemas.common import NO_ID_REUSE, created_at_field, updated_at_field

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"


class UserBase(SQLModel):
    username: str = Field(index=True, unique=True, max_length=255)
    full_name: str | None = Field(default=None, max_length=255)
    is_admin: bool = False


class User(UserBase, table=True):
    __tablename__ = "users"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    hashed_password: str = Field(max_length=255)
    require_password_change: bool = False
    session_epoch: int = 0  # raised on logout and password changes: older session cookies stop working
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class UserCreate(BaseModel):
    username: str = PField(min_length=1, max_length=255, pattern=USERNAME_PATTERN)
    full_name: str | None = PField(default=None, max_length=255)
    is_admin: bool = False
    password: str = PField(min_length=6, max_length=255)
    require_password_change: bool = False  # GPUStack's field: the user must choose their own at the next sign-in


class UserUpdate(BaseModel):
    """GPUStack sends the whole user (with `username`, and `password` null to keep it)."""

    username: str | None = PField(default=None, max_length=255)
    full_name: str | None = PField(default=None, max_length=255)
    is_admin: bool | None = None
    password: str | None = PField(default=None, min_length=6, max_length=255)
    require_password_change: bool | None = None


class UserSelfUpdate(BaseModel):
    """GPUStack's `PUT /v2/users/me`; a new password goes through /auth/update-password (it needs the current one)."""

    full_name: str | None = PField(default=None, max_length=255)
    avatar_url: str | None = PField(default=None, max_length=2048)
    password: str | None = None


class PasswordChange(BaseModel):
    current_password: str
    new_password: str = PField(min_length=6, max_length=255)


class UserPublic(UserBase):
    id: int
    is_active: bool = True  # GPUStack's field: every user here is active
    source: str = "Local"  # GPUStack's auth provider: users here are local
    require_password_change: bool
    created_at: datetime
    updated_at: datetime


class LoginRequest(BaseModel):
    username: str = PField(max_length=255)
    password: str = PField(max_length=1024)
