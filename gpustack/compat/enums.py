"""Enum values as GPUStack spells them: matched case-insensitively, with GPUStack's aliases."""

from collections.abc import Callable, Collection, Mapping
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


def drop_nulls(data: Any, nullable: Collection[str]) -> Any:
    """A before-validator body: JSON null for one of `nullable` (fields GPUStack's DTOs declare optional and
    send as null when unset) means this project's default for it."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if v is not None or k not in nullable}
