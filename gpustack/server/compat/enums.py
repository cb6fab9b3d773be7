"""Enum values as GPUStack spells them: matched case-insensitively, with GPUStack's aliases."""

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any


def lenient(enum_cls: type[StrEnum], aliases: Mapping[str, str] | None = None) -> Callable[[Any], Any]:
    """A before-validator: `"vLLM"` → `vllm`, `"Partial"` → the aliased value; anything else passes on
    unchanged so the enum's own error names the accepted values."""
    table = {member.value.lower(): member.value for member in enum_cls}
    table.update({k.lower(): v for k, v in (aliases or {}).items()})

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return table.get(value.strip().lower(), value)
        return value

    return convert


def drop_nulls(data: Any, fields: Mapping[str, Any]) -> Any:
    """A before-validator body: a JSON null for a field that has a non-null default means the default,
    as GPUStack's DTOs send `null` for every field left unset."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if v is not None or _nullable(fields.get(k))}


def _nullable(field: Any) -> bool:
    return field is None or field.default is None
