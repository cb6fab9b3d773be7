"""Adds the usage chunk an OpenAI stream ends with (stream_options.include_usage) when the engine sends none."""

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE vocabularies


@dataclass
class UsageWatch:
    """What one stream needs: the prompt's size, and what the events passing through showed."""

    prompt_chars: int
    engine_usage: bool = False  # the engine sent its own usage: nothing to add
    completion_tokens: int = 0
    last: dict[str, Any] | None = None

    def observe(self, event: bytes) -> None:
        payload = event.strip()
        if not payload.startswith(b"data:") or payload == b"data: [DONE]":
            return
        try:
            chunk = json.loads(payload[5:])
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(chunk, dict):
            return
        self.last = chunk
        if chunk.get("usage"):
            self.engine_usage = True
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content") or choice.get("text"):
                self.completion_tokens += 1  # llama.cpp engines stream one token per chunk

    def usage_event(self) -> bytes:
        prompt = math.ceil(self.prompt_chars / _CHARS_PER_TOKEN)
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


def _text_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_size(v.get("text", "") if isinstance(v, dict) else v) for v in value)
    return 0


def usage_watch(request: dict[str, Any]) -> UsageWatch | None:
    """A watch when the request streams and asks for usage; None otherwise (the bytes pass untouched)."""
    options = request.get("stream_options")
    if request.get("stream") is not True or not isinstance(options, dict) or options.get("include_usage") is not True:
        return None
    messages = request.get("messages")
    if isinstance(messages, list):
        size = sum(_text_size(m.get("content")) for m in messages if isinstance(m, dict))
    else:
        size = _text_size(request.get("prompt"))
    return UsageWatch(prompt_chars=size)


async def with_usage(chunks: AsyncIterator[bytes], watch: UsageWatch) -> AsyncIterator[bytes]:
    """Passes whole SSE events through as they complete; puts a usage event before `data: [DONE]` if needed."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if event.strip() == b"data: [DONE]" and not watch.engine_usage:
                yield watch.usage_event()
            watch.observe(event)
            yield event + b"\n\n"
    if buffer:
        yield buffer
