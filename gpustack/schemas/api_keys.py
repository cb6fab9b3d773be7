"""ApiKey table and DTOs: only a hash of the secret is stored; the key is shown once."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, field_validator, model_validator
from pydantic import Field as PField
from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from gpustack.compat.enums import drop_nulls
from gpustack.schemas.common import (
    NO_ID_REUSE,
    created_at_field,
    json_field,
    optional_datetime_field,
    updated_at_field,
)


class Scope(StrEnum):
    """GPUStack's PermissionScope values."""

    INFERENCE = "inference"  # the OpenAI routes under /v1
    MANAGEMENT = "management"  # the management API under /v2, with the owner's rights
    ALL = "*"  # both


class ApiKeyBase(SQLModel):
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=2048)
    access_key: str = Field(index=True, unique=True, max_length=64)
    expires_at: datetime | None = optional_datetime_field()
    allowed_model_names: list[str] = json_field(list)


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_keys"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    hashed_secret_key: str = Field(max_length=255)
    scopes: str = Field(default=Scope.INFERENCE.value, max_length=64)  # comma-separated Scope values
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ApiKeyCreate(BaseModel):
    name: str = PField(min_length=1, max_length=255)
    description: str | None = PField(default=None, max_length=2048)
    expires_in_seconds: int | None = PField(
        default=None,
        gt=0,
        le=10 * 365 * 24 * 3600,
        validation_alias=AliasChoices("expires_in_seconds", "expires_in"),  # GPUStack's name
    )
    allowed_model_names: list[str] = []
    scope: list[Scope] = PField(default=[Scope.INFERENCE], min_length=1, description="inference, management or *")

    @model_validator(mode="before")
    @classmethod
    def _gpustack_nulls(cls, data: Any) -> Any:
        return drop_nulls(data, {"allowed_model_names", "scope"})

    def stored_scopes(self) -> str:
        """The `scopes` column: comma-separated, `*` spelled out."""
        wanted = {Scope.INFERENCE, Scope.MANAGEMENT} if Scope.ALL in self.scope else set(self.scope)
        return ",".join(sorted(s.value for s in wanted))


class ApiKeyUpdate(BaseModel):
    """GPUStack's PUT body: the description and allowed models are replaced; `scope` only when sent (an
    omitted scope keeps the key's, where GPUStack would widen it to `*`)."""

    description: str | None = PField(default=None, max_length=2048)
    allowed_model_names: list[str] | None = None
    scope: list[Scope] | None = PField(default=None, min_length=1)

    def stored_scopes(self) -> str | None:
        return ApiKeyCreate(name="-", scope=self.scope).stored_scopes() if self.scope else None


def scopes_of(value: str) -> set[str]:
    return {part for part in value.split(",") if part}


class ApiKeyPublic(ApiKeyBase):
    id: int
    user_id: int
    is_custom: bool = False  # GPUStack's field: keys here are always generated
    scope: list[Scope] = PField(validation_alias=AliasChoices("scope", "scopes"))
    created_at: datetime
    updated_at: datetime

    @field_validator("scope", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return sorted(scopes_of(value)) if isinstance(value, str) else value


class ApiKeyCreated(ApiKeyPublic):
    """Returned once at creation: `value` is the only time the full key is visible."""

    value: str
