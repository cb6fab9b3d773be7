"""Async HTTP client for the server API a worker uses: register, status, instances, models, files."""

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from gpustack.schemas.instances import ModelInstancePublic, ModelInstanceUpdate
from gpustack.schemas.model_files import ModelFileReport
from gpustack.schemas.models import ModelPublic
from gpustack.schemas.workers import WorkerRegister, WorkerRegistered, WorkerStatusReport

logger = logging.getLogger(__name__)

WATCH_READ_TIMEOUT = 45.0  # the server sends a heartbeat line every 15s


class ServerClientError(Exception):
    """Base class of every error the server client raises."""


class ServerUnreachableError(ServerClientError):
    """The request did not get an HTTP answer (connection refused, timeout, reset...)."""


class ServerResponseError(ServerClientError):
    """The server answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status_code: int, detail: str) -> None:
        super().__init__(f"{method} {path} answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def is_retryable(exc: ServerClientError) -> bool:
    """Worth retrying later: no answer, a server error, a conflict or rate limiting."""
    if isinstance(exc, ServerResponseError):
        return exc.status_code >= 500 or exc.status_code in (408, 409, 429)
    return True


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:  # GPUStack's {code, reason, message}
        return str(body["message"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:500]


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    request = response.request
    raise ServerResponseError(request.method, request.url.path, response.status_code, _detail(response))


_EVENT_KINDS = {1: "created", 2: "updated", 3: "deleted"}  # GPUStack's event type codes


def _parse_event(line: str) -> tuple[str, dict[str, Any] | None]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise ServerClientError(f"malformed watch line {line[:200]!r}: {exc}") from exc
    if not isinstance(event, dict):
        raise ServerClientError(f"malformed watch line {line[:200]!r}")
    data = event.get("data")
    code = event.get("type")
    kind = _EVENT_KINDS[code] if isinstance(code, int) and code in _EVENT_KINDS else str(code)
    return kind, data if isinstance(data, dict) else None


PayloadFactory = Callable[[], Awaitable[WorkerRegister]]


def _read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_secret(path: Path, secret: str) -> None:
    """Atomically (temp file, fsync, rename), readable by the worker's user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ServerClient:
    """One pooled AsyncClient; keeps the worker credential in memory and re-registers on a 401."""

    def __init__(
        self,
        base_url: str,
        token: str,
        payload: PayloadFactory,
        timeout: float = 30.0,
        secret_path: Path | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._payload = payload
        # the registration secret: proves on the next registration that this worker owns its name
        self._secret_path = secret_path
        self._secret = _read_secret(secret_path)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=5.0))
        self._registration: WorkerRegistered | None = None
        self._register_lock = asyncio.Lock()

    @property
    def registration(self) -> WorkerRegistered:
        if self._registration is None:
            raise RuntimeError("the worker is not registered yet")
        return self._registration

    @property
    def worker_id(self) -> int | None:
        return self._registration.id if self._registration else None

    @property
    def proxy_credential(self) -> str | None:
        return self._registration.proxy_credential if self._registration else None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, credential: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {credential}"}
        try:
            return await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{method} {self.base_url}{path} failed: {exc!r}") from exc

    async def register(self) -> WorkerRegistered:
        """POST /v2/workers/register with the cluster token; the new credential replaces the old."""
        payload = (await self._payload()).model_copy(update={"secret": self._secret})
        response = _check(
            await self._send("POST", "/v2/workers/register", self._token, json=payload.model_dump(mode="json"))
        )
        self._registration = WorkerRegistered.model_validate(response.json())
        self._secret = self._registration.secret or None
        if self._secret_path is not None and self._secret:
            _write_secret(self._secret_path, self._secret)
        logger.info("registered as worker '%s' (id %d)", self._registration.name, self._registration.id)
        return self._registration

    async def _reregister(self, stale: str) -> None:
        """Register again unless another caller already replaced the stale credential."""
        async with self._register_lock:
            if self._registration is None or self._registration.credential == stale:
                logger.warning("server refused the worker credential; registering again")
                await self.register()

    async def _authed(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        credential = self.registration.credential
        response = await self._send(method, path, credential, **kwargs)
        if response.status_code == 401:
            await self._reregister(credential)
            response = await self._send(method, path, self.registration.credential, **kwargs)
        return _check(response)

    async def report_status(self, report: WorkerStatusReport) -> None:
        await self._authed("POST", "/v2/workers/me/status", json=report.model_dump(mode="json"))

    async def list_instances(self, worker_id: int) -> list[ModelInstancePublic]:
        """Every instance placed on the worker (all pages)."""
        params = {"worker_id": worker_id, "page": -1}
        body = (await self._authed("GET", "/v2/model-instances", params=params)).json()
        return [ModelInstancePublic.model_validate(item) for item in body["items"]]

    async def watch_instances(self, worker_id: int) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
        """(event type, row) pairs from the watch stream; ends when the server closes it."""
        credential = self.registration.credential
        headers = {"Authorization": f"Bearer {credential}"}
        params: dict[str, str | int] = {"worker_id": worker_id, "watch": "true"}
        timeout = httpx.Timeout(10.0, read=WATCH_READ_TIMEOUT)
        try:
            async with self._http.stream(
                "GET", "/v2/model-instances", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code == 401:
                    await self._reregister(credential)
                if not response.is_success:
                    await response.aread()
                _check(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield _parse_event(line)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"watch stream of {self.base_url} failed: {exc!r}") from exc

    async def get_model(self, model_id: int) -> ModelPublic:
        return ModelPublic.model_validate((await self._authed("GET", f"/v2/models/{model_id}")).json())

    async def get_inference_backend(self, name: str) -> dict[str, Any]:
        """The catalog entry of a backend (GET /v2/inference-backends/backend_name/NAME)."""
        return dict((await self._authed("GET", f"/v2/inference-backends/backend_name/{name}")).json())

    async def update_instance(self, instance_id: int, update: ModelInstanceUpdate) -> ModelInstancePublic:
        body = update.model_dump(mode="json", exclude_unset=True)
        response = await self._authed("PATCH", f"/v2/model-instances/{instance_id}", json=body)
        return ModelInstancePublic.model_validate(response.json())

    async def report_model_file(self, report: ModelFileReport) -> None:
        await self._authed("POST", "/v2/model-files", json=report.model_dump(mode="json"))
