"""Request body limits per route family: the management API is small, the OpenAI routes larger."""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpustack.compat.errors import error_body

MANAGEMENT_BODY_LIMIT = 1 << 20  # 1 MiB: every /v2 and /auth body is a small JSON document


def _too_large(path: str, limit: int) -> bytes:
    message = f"The request body is larger than this endpoint accepts ({limit} bytes)."
    if path.startswith("/v1"):
        hint = " Raise the server's --openai-max-body-mib to accept larger uploads."
        body: dict[str, Any] = {
            "error": {"message": message + hint, "type": "invalid_request_error", "param": None, "code": None}
        }
    else:
        body = error_body(413, message)
    return json.dumps(body).encode()


class BodyLimitMiddleware:
    """Answers 413 when Content-Length is over the route's limit, or once a chunked body grows past it;
    the application then sees a disconnect instead of the rest of the body."""

    def __init__(self, app: ASGIApp, *, openai_limit: int, management_limit: int = MANAGEMENT_BODY_LIMIT):
        self.app = app
        self.openai_limit = openai_limit
        self.management_limit = management_limit

    def limit_for(self, path: str) -> int:
        return self.openai_limit if path.startswith("/v1/") else self.management_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.limit_for(path)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer_413(send, path, limit)
            return
        await _Limited(self.app, scope, receive, send, limit).run()


async def _answer_413(send: Send, path: str, limit: int) -> None:
    body = _too_large(path, limit)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers + [(b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class _Limited:
    """One request whose body is counted as it arrives."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int):
        self.app, self.scope, self._receive, self._send, self.limit = app, scope, receive, send, limit
        self.seen = 0
        self.started = False
        self.rejected = False

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            if not self.rejected:
                raise
            # the application failed on the disconnect it was handed after the 413: expected, not logged

    async def receive(self) -> Message:
        if self.rejected:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.rejected = True
                if not self.started:
                    self.started = True
                    await _answer_413(self._send, self.scope.get("path", ""), self.limit)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.rejected:
            return  # the 413 went out already; drop what the application answers to the disconnect
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
