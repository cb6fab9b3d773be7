"""Helpers for the HTTP API tests in tests/server (not a test module itself).

The `server` fixture is shared per database backend for the whole session, so every helper
creates uniquely named rows and nothing assumes empty tables.
"""

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gpustack.schemas.instances import ModelInstance
from tests.utils.openapi_contract import assert_response_contract
from tests.utils.server import RunningServer

_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
_admin_keys: dict[str, str] = {}
_engines: dict[str, Engine] = {}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def backend(server: RunningServer) -> str:
    """sqlite, postgresql or mysql."""
    return server.config.resolved_database_url().split("://", 1)[0].split("+", 1)[0]


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def client_with(server: RunningServer, credential: str) -> httpx.Client:
    """Every answer is checked against GPUStack's OpenAPI document (tests/utils/openapi_contract.py)."""
    return server.client(headers=bearer(credential), event_hooks={"response": [assert_response_contract]})


def admin_key(server: RunningServer) -> str:
    """An admin API key, created once per server: Basic auth runs scrypt on every request, a key does not."""
    if server.url not in _admin_keys:
        with server.admin() as admin:
            body = {"name": unique("tests-server-admin"), "scope": ["inference", "management"]}
            response = admin.post("/v2/api-keys", json=body)
        assert response.status_code == 201, response.text
        _admin_keys[server.url] = response.json()["value"]
    return _admin_keys[server.url]


def admin_client(server: RunningServer) -> httpx.Client:
    return client_with(server, admin_key(server))


def register_worker(server: RunningServer, name: str | None = None, **fields: Any) -> dict[str, Any]:
    with server.client() as anonymous:
        response = anonymous.post(
            "/v2/workers/register", json={"name": name or unique("worker"), **fields}, headers=bearer(server.token)
        )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ready_worker(
    server: RunningServer, prefix: str, gpus: list[dict[str, Any]], memory_total: int, label: str | None = None
) -> dict[str, Any]:
    """A registered worker made ready by its first heartbeat, with `gpus` (simulated) and `memory_total` bytes of
    RAM, labelled {"pool": label} (a label of its own unless given); its registration plus "selector"."""
    label = label or unique(prefix)
    status = {"memory": {"total": memory_total}, "gpu_devices": gpus, "simulated_gpus": True}
    registered = register_worker(server, unique(prefix), labels={"pool": label}, status=status)
    with client_with(server, registered["credential"]) as own:
        assert own.post("/v2/workers/me/status", json={"status": status}).status_code == 200
    return {**registered, "selector": {"pool": label}}


def create_model(api: httpx.Client, name: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"name": name or unique("model"), "source": "local_path", "local_path": "/models/x.gguf", **fields}
    response = api.post("/v2/models", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def create_user(api: httpx.Client, password: str = "user-password-1", **fields: Any) -> dict[str, Any]:
    response = api.post("/v2/users", json={"username": unique("user"), "password": password, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def sync_engine(server: RunningServer) -> Engine:
    """A synchronous engine on the server's database, for arranging and checking rows directly."""
    url = server.config.resolved_database_url()
    if url not in _engines:
        rest = url.split("://", 1)[1]
        args = {"timeout": 30} if backend(server) == "sqlite" else {}
        _engines[url] = create_engine(
            f"{_SYNC_DRIVERS[backend(server)]}://{rest}", poolclass=NullPool, connect_args=args
        )
    return _engines[url]


def insert_instance(server: RunningServer, *, model_id: int, worker_id: int | None = None, **fields: Any) -> int:
    """There is no public create for instances (the model controller makes them): insert the row directly."""
    fields.setdefault("state", "scheduled" if worker_id else "pending")
    with Session(sync_engine(server)) as session:
        inst = ModelInstance(name=unique("inst"), model_id=model_id, worker_id=worker_id, **fields)
        session.add(inst)
        session.commit()
        assert inst.id is not None
        return inst.id


GPUSTACK_EVENT_TYPES = {1: "created", 2: "updated", 3: "deleted"}


def parse_gpustack_frames(buffer: str) -> tuple[list[dict[str, Any]], str]:
    """An independent reader of GPUStack's watch framing: every frame ends with a blank line; an empty
    frame is a heartbeat, any other is one JSON event with an integer `type`. Returns the events (the
    type's name in `type`, the integer in `code`) and the unfinished rest of the buffer."""
    events = []
    while "\n\n" in buffer:
        frame, buffer = buffer.split("\n\n", 1)
        if not frame.strip():
            events.append({"type": "heartbeat", "code": None, "data": None})
            continue
        raw = json.loads(frame)
        assert isinstance(raw["type"], int) and "\n" not in frame, frame
        events.append({**raw, "type": GPUSTACK_EVENT_TYPES[raw["type"]], "code": raw["type"]})
    return events, buffer


class WatchStream:
    """Reads a `?watch=true` stream (GPUStack's framing) on a thread so that every wait is bounded.

    The reader stops at the first line after `close()`; tests shorten the server's heartbeat so a
    line arrives at least that often and no reader or server stream is left behind.
    """

    def __init__(self, client: httpx.Client, path: str, params: dict[str, Any] | None = None):
        self._client = client  # owned by this stream: httpx clients are not shared across threads here
        self._path = path
        self._params = {**(params or {}), "watch": "true"}
        self._events: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self.status_code: int | None = None
        self.seen: list[dict[str, Any]] = []
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the watch stream did not answer"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._path, params=self._params) as response:
                self.status_code = response.status_code
                self._opened.set()
                if response.status_code != 200:
                    response.read()
                    self._events.put(response.text)
                    return
                buffer = ""
                for text in response.iter_text():
                    if self._stop.is_set():
                        return
                    events, buffer = parse_gpustack_frames(buffer + text)
                    for event in events:
                        self._events.put(event)
        except Exception as exc:  # reported to the waiting test, never swallowed
            self._events.put(exc)
        finally:
            self._opened.set()
            self._events.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from {self._path} within {timeout}s; last: {self.seen[-5:]}") from None
        if event is None or not isinstance(event, dict):
            raise AssertionError(f"watch stream {self._path} ended early: {event!r}")
        self.seen.append(event)
        return event

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching line from {self._path} within {timeout}s; last: {self.seen[-5:]}")

    def until_heartbeat(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every line up to (not including) the next heartbeat."""
        lines: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while (event := self.next(max(0.01, deadline - time.monotonic())))["type"] != "heartbeat":
            lines.append(event)
        return lines

    def quiet(self) -> list[dict[str, Any]]:
        """Lines up to the second next heartbeat. The first may have been sent before a change being
        tested was published; the second comes after the server has handled that change."""
        return self.until_heartbeat() + self.until_heartbeat()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._client.close()
        assert not self._thread.is_alive(), "the watch reader did not stop"


@contextmanager
def watching(server: RunningServer, credential: str | None, path: str, **params: Any) -> Iterator[WatchStream]:
    """Watch `path` with its own client; `credential` is a bearer value (None: no credentials)."""
    client = server.client(headers=bearer(credential) if credential else {})
    stream = WatchStream(client, path, params)
    try:
        yield stream
    finally:
        stream.close()


def of_id(kind: str, obj_id: int) -> Callable[[dict[str, Any]], bool]:
    """Predicate: an event of `kind` (created/updated/deleted) about row `obj_id`."""
    return lambda ev: ev["type"] == kind and (ev["data"] or {}).get("id") == obj_id
