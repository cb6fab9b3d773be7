"""The GPUStack wire helpers on their own: lenient enums, nulls, error bodies, watch frames."""

from enum import StrEnum

from gpustack.compat import watch as wire
from gpustack.compat.enums import drop_nulls, lenient
from gpustack.compat.errors import error_body
from tests.server.api_test_helpers import parse_gpustack_frames


class Color(StrEnum):
    RED = "red"
    LIGHT_BLUE = "light-blue"


def test_lenient_enum_matches_any_case_and_aliases() -> None:
    convert = lenient(Color, {"sky": "light-blue"})
    assert [convert(v) for v in ("RED", " Light-Blue ", "sky", "green", 3)] == [
        "red",
        "light-blue",
        "light-blue",
        "green",
        3,
    ]


def test_drop_nulls_only_for_named_fields() -> None:
    assert drop_nulls({"a": None, "b": None, "c": 1}, {"a"}) == {"b": None, "c": 1}


def test_error_body_names_the_reason() -> None:
    assert error_body(404, "gone") == {"code": 404, "reason": "NotFound", "message": "gone"}
    assert error_body(422, "bad", {"errors": []})["reason"] == "Invalid"


def test_frames_round_trip_through_an_independent_reader() -> None:
    stream = (
        wire.frame("created", {"id": 1, "a": 1})
        + wire.HEARTBEAT
        + wire.frame("updated", {"id": 1, "a": 2}, wire.changed_fields({"a": 1}, {"id": 1, "a": 2}))
    ).decode()
    events, rest = parse_gpustack_frames(stream[:-3])  # the last frame arrives in two pieces
    assert [e["type"] for e in events] == ["created", "heartbeat"] and rest
    more, rest = parse_gpustack_frames(rest + stream[-3:])
    assert rest == "" and more[0]["code"] == 2 and more[0]["changed_fields"] == {"a": [1, 2]}
    assert more[0]["id"] == 1 and more[0]["data"] == {"id": 1, "a": 2}
