"""The metering hook's own cost, measured in-process: the gateway's metered handling of an answer (record,
usage request spliced into the body, body relayed through the meter, stream usage taken out) minus the
unmetered handling of the same answer, per request, and a cProfile of the metered runs. Used by
benchmarks/proxy_overhead.py; run alone: `.venv/bin/python benchmarks/metering_hook.py [N]`.
"""

import asyncio
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.responses import StreamingResponse  # noqa: E402

from gpustack.gateway.metering import Meter, Metered  # noqa: E402
from gpustack.gateway.usage import ask_for_usage, usage_watch  # noqa: E402
from gpustack.server.metrics import ServerMetrics  # noqa: E402

REQUEST = {"model": "tiny", "prompt": "hello", "max_tokens": 1, "temperature": 0, "stream": True}
RAW = json.dumps(REQUEST).encode()
_BASE = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "tiny"}
ANSWER = json.dumps({**_BASE, "choices": [{"text": "x", "index": 0, "finish_reason": "length"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()  # fmt: skip
EVENTS = [b"data: " + json.dumps({**_BASE, "choices": [{"text": t, "index": 0}]}).encode() + b"\r\n\r\n"
          for t in ("x", "")] + [b"data: [DONE]\r\n\r\n"]  # fmt: skip
USAGE = b"data: " + json.dumps({**_BASE, "choices": [], "usage": {"prompt_tokens": 3}}).encode() + b"\r\n\r\n"


async def _chunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _drain(response: StreamingResponse) -> None:
    async for _ in response.body_iterator:
        pass


def _cases(meter: Meter) -> dict[str, tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]]:
    async def plain_off() -> None:
        await _drain(StreamingResponse(_chunks([ANSWER]), media_type="application/json"))

    async def plain_on() -> None:
        m = Metered(1, 1, "tiny", "/v1/completions")
        response = StreamingResponse(_chunks([ANSWER]), media_type="application/json")
        await _drain(meter.meter(m, response))  # type: ignore[arg-type]

    async def stream_off() -> None:
        await _drain(StreamingResponse(_chunks(EVENTS), media_type="text/event-stream"))

    async def stream_on() -> None:
        watch = usage_watch(REQUEST)
        assert watch is not None
        m = Metered(1, 1, "tiny", "/v1/completions", watch=watch)
        ask_for_usage(REQUEST, RAW)
        body = _chunks([*EVENTS[:-1], USAGE, EVENTS[-1]])  # the engine adds the usage event; the meter hides it
        response = StreamingResponse(body, media_type="text/event-stream")
        response.status_code = 200
        await _drain(meter.meter(m, response))  # type: ignore[arg-type]

    return {"plain": (plain_on, plain_off), "stream": (stream_on, stream_off)}


async def _time(run: Callable[[], Awaitable[None]], n: int, meter: Meter) -> float:
    started = time.perf_counter()
    for i in range(n):
        await run()
        if i % 500 == 0:
            meter.take()  # as the writer does
    return (time.perf_counter() - started) / n * 1e6


async def _measure(n: int) -> tuple[dict[str, tuple[float, float]], str]:
    meter = Meter(ServerMetrics())
    cases = _cases(meter)
    costs = {}
    for name, (on, off) in cases.items():
        await _time(on, 500, meter)
        await _time(off, 500, meter)
        ons, offs = [], []
        for _ in range(5):  # interleaved, best of five: the machine's noise is not the hook's
            ons.append(await _time(on, n // 5, meter))
            offs.append(await _time(off, n // 5, meter))
        costs[name] = (min(ons), min(offs))
    profiler = cProfile.Profile()
    profiler.enable()
    for on, _ in cases.values():
        await _time(on, n // 2, meter)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(r"gpustack/gateway", 10)
    return costs, out.getvalue()


def profile_hook(n: int) -> None:
    costs, profile = asyncio.run(_measure(n))
    print(f"metering hook in-process, {n} requests per case (best of 5 interleaved runs):")
    for name, (on, off) in costs.items():
        print(f"  {name:6}: metered {on:7.2f} us  unmetered {off:7.2f} us  hook adds {on - off:+7.2f} us per request")
    lines = [line for line in profile.splitlines() if "gpustack/gateway" in line or "ncalls" in line]
    print("  cProfile of the metered runs (gpustack/gateway functions by own time):")
    print("\n".join("    " + line.strip() for line in lines))


if __name__ == "__main__":
    profile_hook(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
