"""GPUStack's watch framing: one compact JSON event per chunk, each followed by a blank line.

An event is `{"type": <code>, "id": <row id>, "data": {...}, "changed_fields": {field: [old, new]}}`
with GPUStack's codes (1 created, 2 updated, 3 deleted); a heartbeat is a chunk holding only the blank line.
"""

import json
from typing import Any

CREATED, UPDATED, DELETED = 1, 2, 3
CODES = {"created": CREATED, "updated": UPDATED, "deleted": DELETED}
HEARTBEAT = b"\n\n"
MEDIA_TYPE = "application/json"


def frame(kind: str, data: dict[str, Any], changed_fields: dict[str, Any] | None = None) -> bytes:
    event = {"type": CODES[kind], "id": data.get("id"), "data": data, "changed_fields": changed_fields or {}}
    return (json.dumps(event, separators=(",", ":")) + "\n\n").encode()


def changed_fields(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Old and new value of each field an update changed, as `[old, new]` pairs."""
    return {key: [old, current.get(key)] for key, old in previous.items() if key in current}
