"""HTTP client for the request path: TCP_NODELAY set explicitly, so small writes are never held by Nagle."""

import socket
from collections.abc import AsyncIterator

import httpx

# asyncio usually sets TCP_NODELAY itself; being explicit keeps a request whose headers and body go
# out in two writes from ever waiting ~40 ms for the peer's delayed ACK.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def fast_async_client(*, timeout: httpx.Timeout, limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(socket_options=NODELAY, limits=limits or httpx.Limits())
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


# Set by the worker proxy on answers it makes itself (instance unknown or not running, engine silent,
# bad credential), as opposed to the engine's own answers: the gateway then tries another replica.
PROXY_ERROR_HEADER = "x-gpustack-proxy-error"


async def relay(response: httpx.Response) -> AsyncIterator[bytes]:
    """Yields an upstream response's raw bytes as they arrive, and always releases its connection."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()
