"""The llama-cpp-python engine process: `llama_cpp.server` with `stream_options.include_usage` honoured.

llama-cpp-python 0.3.36 drops `stream_options` (its request models ignore unknown fields), so its streams
never carry usage. Here a stream that asks for it ends with one more chunk, `choices: []` and the exact
`usage` the same request answers without streaming: the prompt tokens the engine evaluated and the tokens
it generated (an end-of-generation token not counted, as the engine does). Run as
`python -m gpustack.engines.llama_cpp_server <llama_cpp.server arguments>`.
"""

import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any


@functools.cache
def _is_eog() -> Callable[[Any, int], bool]:
    import llama_cpp

    return llama_cpp.llama_vocab_is_eog  # type: ignore[no-any-return]


class _Counts:
    def __init__(self) -> None:
        self.prompt = 0
        self.completion = 0

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
        }


def _usage_chunk(last: dict[str, Any], counts: _Counts) -> dict[str, Any]:
    keys = ("id", "object", "created", "model")
    return {**{k: last[k] for k in keys if k in last}, "choices": [], "usage": counts.usage()}


def with_usage(llama: Any, chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`chunks` (one request's stream), then a usage chunk counted where the engine generates. Requests run
    one at a time (the server's lock), so the model's `generate` is wrapped for this request only."""
    counts = _Counts()
    generate = functools.partial(type(llama).generate, llama)  # the class's: never an earlier wrapper
    is_eog = _is_eog()

    def counting(tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
        counts.prompt = len(tokens)
        for token in generate(tokens, *args, **kwargs):
            if not is_eog(llama._model.vocab, token):
                counts.completion += 1
            yield token

    llama.generate = counting
    last: dict[str, Any] | None = None
    try:
        for chunk in chunks:
            last = chunk
            yield chunk
    finally:
        if llama.__dict__.get("generate") is counting:  # a later request may have wrapped it already
            del llama.generate
    if last is not None:
        yield _usage_chunk(last, counts)


def _wants_usage(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def _counting_call(llama_call: Callable[..., Any]) -> Callable[..., Any]:
    def call(llama: Any, **kwargs: Any) -> Any:
        return with_usage(llama, llama_call(llama, **kwargs))

    return call


def install() -> bool:
    """Wraps the server's stream publisher: streams that ask for usage get the counting call. A llama-cpp-python
    without the hooks this relies on is served as it is (the gateway then estimates stream usage)."""
    import llama_cpp
    from llama_cpp.server import app

    publish = getattr(app, "get_event_publisher", None)
    if publish is None or not hasattr(llama_cpp, "llama_vocab_is_eog"):
        print(f"gpustack: llama-cpp-python {llama_cpp.__version__} lacks the hooks for stream usage; "
              "streams are served without it", file=sys.stderr)  # fmt: skip
        return False

    async def get_event_publisher(*, request: Any, llama_call: Callable[..., Any], **kwargs: Any) -> None:
        if _wants_usage(await request.body()):  # read (and cached) by FastAPI before the handler ran
            llama_call = _counting_call(llama_call)
        await publish(request=request, llama_call=llama_call, **kwargs)

    app.get_event_publisher = get_event_publisher  # type: ignore[assignment]
    return True


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    install()
    serve()


if __name__ == "__main__":
    main()
