"""The usage chunk the gateway adds to streams that ask for it, and leaves alone when the engine sent one."""

import json
from collections.abc import AsyncIterator

from gpustack.gateway.usage import UsageWatch, ask_for_usage, usage_watch, with_usage


def _event(data: object) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n"


def _chunk(text: str, usage: dict | None = None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}}], "usage": usage}  # fmt: skip


async def _run(chunks: list[bytes], request: dict, watch: UsageWatch | None = None) -> list[dict | str]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    watch = watch or usage_watch(request)
    assert watch is not None
    raw = b"".join([part async for part in with_usage(source(), watch)])
    events = [e[len("data: ") :] for e in raw.decode().split("\n\n") if e]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


REQUEST = {
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "x" * 10}],
}


async def test_usage_chunk_is_added_before_done() -> None:
    stream = b"".join([_event(_chunk("a")), _event(_chunk("b")), _event(_chunk("")), _event(b"[DONE]")])
    # split at awkward places, as TCP may deliver it
    events = await _run([stream[:5], stream[5:61], stream[61:]], REQUEST)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert isinstance(usage_chunk, dict) and usage_chunk["choices"] == []
    assert (usage_chunk["id"], usage_chunk["model"], usage_chunk["created"]) == ("c1", "m", 7)
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == 2 and usage["prompt_tokens"] == 3 and usage["total_tokens"] == 5
    assert usage["estimated"] is True
    assert [e["choices"][0]["delta"]["content"] for e in events[:3]] == ["a", "b", ""]  # type: ignore[index]


async def test_engine_usage_is_passed_through_alone() -> None:
    own = {"prompt_tokens": 11, "completion_tokens": 1, "total_tokens": 12}
    stream = [_event(_chunk("a")), _event({**_chunk(""), "choices": [], "usage": own}), b"data: [DONE]\r\n\r\n"]
    events = await _run(stream, REQUEST)
    assert [e["usage"] for e in events[:-1]] == [None, own]  # type: ignore[index]
    assert events[-1] == "[DONE]"


def test_every_stream_is_watched_and_remembers_whether_the_client_asked() -> None:
    assert usage_watch({"stream": False, "stream_options": {"include_usage": True}}) is None
    plain = usage_watch({"stream": True})
    assert plain is not None and plain.client_wants_usage is False
    declined = usage_watch({"stream": True, "stream_options": {"include_usage": False}})
    assert declined is not None and declined.client_wants_usage is False
    watch = usage_watch({"stream": True, "stream_options": {"include_usage": True}, "prompt": ["ab", "cd"]})
    assert watch is not None and watch.prompt_chars == 4 and watch.client_wants_usage


def test_ask_for_usage_keeps_the_clients_other_stream_options() -> None:
    request = {"model": "m", "stream": True, "stream_options": {"x": 1}}
    body = json.loads(ask_for_usage(request, json.dumps(request).encode()))
    assert body == {"model": "m", "stream": True, "stream_options": {"x": 1, "include_usage": True}}


def test_ask_for_usage_splices_the_option_into_a_body_without_one() -> None:
    raw = b' \n{"model": "m",\n "stream": true, "messages": [{"role": "user", "content": "{x}"}]}'
    body = json.loads(ask_for_usage(json.loads(raw), raw))
    assert body == {**json.loads(raw), "stream_options": {"include_usage": True}}


async def test_engine_usage_is_hidden_from_a_client_that_did_not_ask() -> None:
    own = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    stream = [
        _event(_chunk("a")),
        _event({**_chunk("b"), "usage": own}),  # usage on a content chunk: stripped, the text kept
        _event({**_chunk(""), "choices": [], "usage": own}),  # a usage-only chunk: dropped
        _event(b"[DONE]"),
    ]
    request = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    watch = usage_watch(request)
    assert watch is not None
    events = await _run(stream, request, watch)
    assert events[-1] == "[DONE]" and len(events) == 3
    assert [e["choices"][0]["delta"]["content"] for e in events[:2]] == ["a", "b"]  # type: ignore[index]
    assert "usage" not in events[1]  # type: ignore[operator]
    assert (watch.prompt_tokens, watch.reported_completion, watch.engine_usage) == (11, 2, True)


async def test_no_usage_chunk_is_added_for_a_client_that_did_not_ask() -> None:
    request = {"stream": True, "messages": [{"role": "user", "content": "x" * 8}]}
    watch = usage_watch(request)
    assert watch is not None
    events = await _run([_event(_chunk("a")), _event(_chunk("b")), _event(b"[DONE]")], request, watch)
    assert len(events) == 3 and events[-1] == "[DONE]"
    assert (watch.prompt_tokens, watch.reported_completion, watch.engine_usage) == (2, 2, False)


async def test_whole_crlf_events_pass_untouched_and_the_usage_is_still_hidden() -> None:
    """sse-starlette engines (llama-cpp-python) end events with CRLF: such chunks pass as they came."""
    own = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    chunks = [{k: v for k, v in _chunk(t).items() if k != "usage"} for t in ("a", "")]  # as llama-cpp-python
    content = [b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks]
    usage = b"data: " + json.dumps({**_chunk(""), "choices": [], "usage": own}).encode() + b"\r\n\r\n"
    request = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    watch = usage_watch(request)
    assert watch is not None

    async def source() -> AsyncIterator[bytes]:
        for chunk in [*content, usage, b"data: [DONE]\r\n\r\n"]:
            yield chunk

    out = [part async for part in with_usage(source(), watch)]
    assert out == [*content, b"data: [DONE]\r\n\r\n"]  # the same bytes, the usage chunk left out
    assert (watch.prompt_tokens, watch.reported_completion, watch.engine_usage) == (5, 2, True)
