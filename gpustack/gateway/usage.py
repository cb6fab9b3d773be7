"""Stream usage: the gateway asks engines for the usage chunk, hides it from clients that did not ask,
and adds one (estimated) when the engine sends none to a client that asked."""

import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE vocabularies
_NO_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
DROP: dict[str, Any] = {}  # observe's answer for an event to leave out
_CONTENT = re.compile(rb'"(?:content|text)"\s*:\s*"[^"]')  # a chunk carrying some text


@dataclass
class UsageWatch:
    """What one stream needs: the prompt (sized only for an estimate), and what the events passing through showed."""

    prompt: Any = None  # the request's prompt (completions), sized only for an estimate
    messages: list[Any] | None = None  # or its messages (chat)
    client_wants_usage: bool = True  # stream_options.include_usage was in the client's request
    engine_usage: bool = False  # the engine sent its own usage: nothing to add
    completion_tokens: int = 0  # chunks with text (llama.cpp engines stream one token per chunk)
    parsed_usage: dict[str, Any] | None = None  # the engine's own usage numbers
    usage_raw: bytes = b""  # or the usage-only chunk they came in, parsed when read (by the writer)
    last: dict[str, Any] | None = None  # the first chunk (id, model, created for an added usage chunk)
    buffer: bytes = b""  # an event not complete yet

    @property
    def usage(self) -> dict[str, Any] | None:
        if self.parsed_usage is None and self.usage_raw:
            try:
                usage = json.loads(self.usage_raw).get("usage")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                usage = None
            self.parsed_usage = usage if isinstance(usage, dict) else {}
            self.usage_raw = b""
        return self.parsed_usage

    def observe(self, event: bytes) -> dict[str, Any] | None:
        """Counts one SSE event; returns the parsed chunk when it carries the engine's usage."""
        payload = event.strip()
        if not payload.startswith(b"data:") or payload == b"data: [DONE]":
            return None
        if _CONTENT.search(payload):
            self.completion_tokens += 1
        if not self.client_wants_usage and b'"usage"' in payload and _NO_CHOICES.search(payload):
            self.engine_usage, self.usage_raw = True, payload[5:]
            return DROP  # a usage-only chunk the client did not ask for: parsed off the request path
        if (self.last is not None or not self.client_wants_usage) and b'"usage"' not in payload:
            return None  # parsed only when needed (the first chunk names an added usage chunk)
        try:
            chunk = json.loads(payload[5:])
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(chunk, dict):
            return None
        if self.last is None:
            self.last = chunk
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self.engine_usage = True
            self.parsed_usage = usage
            return chunk
        return None

    def feed(self, chunk: bytes) -> bytes:
        """What to pass on for one chunk of the engine's stream: whole SSE events as they complete, a usage event
        added before `data: [DONE]` if the client asked and the engine sent none, the engine's usage hidden from
        a client that did not ask. A plain call per chunk, so the meter relays streams without another layer."""
        if not self.buffer and self.passes(chunk):
            return chunk
        self.buffer += chunk.replace(b"\r\n", b"\n")
        out = []
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            if event.strip() == b"data: [DONE]" and self.client_wants_usage and not self.engine_usage:
                out.append(self.usage_event())
            with_engine_usage = self.observe(event)
            if with_engine_usage is DROP:
                continue
            if with_engine_usage is not None and not self.client_wants_usage:
                kept = _hidden(event, with_engine_usage)
                if kept is None:
                    continue
                event = kept
            out.append(event + b"\n\n")
        return b"".join(out)

    def rest(self) -> bytes:
        """An incomplete event left at the end of the stream, as it came."""
        rest, self.buffer = self.buffer, b""
        return rest

    @property
    def prompt_chars(self) -> int:
        if self.messages is not None:
            return sum(_text_size(m.get("content")) for m in self.messages if isinstance(m, dict))
        return _text_size(self.prompt)

    def passes(self, chunk: bytes) -> bool:
        """True when `chunk` is whole events that need no change: counted here and passed as they are
        (one substring search each; only chunks with usage, the end, or the first one to remember are split)."""
        if not chunk.endswith((b"\n\n", b"\r\n\r\n")) or b'"usage"' in chunk:
            return False
        if self.client_wants_usage and (self.last is None or b"[DONE]" in chunk):
            return False
        self.completion_tokens += len(_CONTENT.findall(chunk))
        return True

    @property
    def prompt_tokens(self) -> int:
        if self.usage is not None:
            return _int(self.usage.get("prompt_tokens"))
        return math.ceil(self.prompt_chars / _CHARS_PER_TOKEN)

    @property
    def reported_completion(self) -> int:
        if self.usage is not None:
            return _int(self.usage.get("completion_tokens"))
        return self.completion_tokens

    def usage_event(self) -> bytes:
        prompt = self.prompt_tokens
        last = self.last or {}
        chunk = {
            "id": last.get("id", ""),
            "object": last.get("object", "chat.completion.chunk"),
            "created": last.get("created", 0),
            "model": last.get("model", ""),
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": self.completion_tokens,
                "total_tokens": prompt + self.completion_tokens,
                "estimated": True,  # added by gpustack: the engine reported none (see docs/openai-api.md)
            },
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _text_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_size(v.get("text", "") if isinstance(v, dict) else v) for v in value)
    return 0


def usage_watch(request: dict[str, Any]) -> UsageWatch | None:
    """A watch for every streamed request (None otherwise: the bytes pass untouched)."""
    if request.get("stream") is not True:
        return None
    options = request.get("stream_options")
    wants = isinstance(options, dict) and options.get("include_usage") is True
    messages = request.get("messages")
    if isinstance(messages, list):
        return UsageWatch(messages=messages, client_wants_usage=wants)
    return UsageWatch(prompt=request.get("prompt"), client_wants_usage=wants)


_ASK = b'"stream_options":{"include_usage":true},'


def ask_for_usage(request: dict[str, Any], body: bytes) -> bytes:
    """The request body with stream_options.include_usage set, for a client that did not ask: spliced in
    after the opening brace when the client sent no stream_options (the body is a non-empty JSON object)."""
    if "stream_options" not in request:
        brace = body.index(b"{") + 1
        return body[:brace] + _ASK + body[brace:]
    options = request.get("stream_options")
    options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
    return json.dumps({**request, "stream_options": options}).encode()


def _hidden(event: bytes, chunk: dict[str, Any]) -> bytes | None:
    """A usage chunk the client did not ask for: dropped when it carries nothing else, else stripped."""
    if not chunk.get("choices"):
        return None
    rest = {k: v for k, v in chunk.items() if k != "usage"}
    return b"data: " + json.dumps(rest).encode()


async def with_usage(chunks: AsyncIterator[bytes], watch: UsageWatch) -> AsyncIterator[bytes]:
    """`chunks` through `watch.feed` (for streams the meter does not relay itself)."""
    async for chunk in chunks:
        if out := watch.feed(chunk):
            yield out
    if rest := watch.rest():
        yield rest
