"""The OpenAI gateway over real HTTP: a server with the gateway hook, real workers registered over the
API, and a stand-in worker proxy + engine that checks the proxy credential."""

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gpustack.core.http import PROXY_ERROR_HEADER
from gpustack.gateway.routing import RoutingTable
from gpustack.gateway.wiring import start_gateway
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.server.db import Database
from tests.utils.openai_engine import StandInEngine
from tests.utils.server import RunningServer, free_port, run_server

CHUNKS = 5
CHUNK_DELAY = 0.15
CHAT = "/v1/chat/completions"


class StandIn(StandInEngine):
    """A worker's proxy and engine in one: /proxy/<instance id>/v1/chat/completions, credential checked."""

    def __init__(self) -> None:
        self.expected: dict[int, str] = {}  # instance id -> the worker's proxy credential
        self.not_running: set[int] = set()  # answered like a worker proxy whose instance is not running
        self.seen: list[dict[str, Any]] = []
        super().__init__()

    async def chat(self, request: Request) -> Response:
        iid = request.path_params["iid"]
        body = await request.body()
        self.seen.append({"iid": iid, "path": request.url.path, "headers": dict(request.headers), "body": body})
        if iid in self.not_running:
            return JSONResponse({"detail": "not running"}, status_code=503, headers={PROXY_ERROR_HEADER: "1"})
        if request.headers.get("authorization") != f"Bearer {self.expected.get(iid)}":
            return JSONResponse({"error": "wrong proxy credential"}, status_code=401)
        data = json.loads(body)
        if data.get("stream"):

            async def events() -> Any:
                for i in range(CHUNKS):
                    yield f"data: {json.dumps({'instance': iid, 'index': i})}\n\n".encode()
                    await asyncio.sleep(CHUNK_DELAY)
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        answer = {"role": "assistant", "content": f"echo from {iid}"}
        return JSONResponse(
            {"object": "chat.completion", "instance": iid, "model": data["model"], "choices": [{"message": answer}]},
            headers={"x-engine": "stand-in"},
        )


@dataclass
class Gw:
    server: RunningServer
    engine: StandIn
    db_url: str
    key: str  # may use every model
    limited_key: str  # may use gw-chat only
    proxy_credentials: dict[str, str] = field(default_factory=dict)  # worker name -> credential
    instances: dict[str, list[int]] = field(default_factory=dict)  # model name -> instance ids

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.server.client(headers=headers)

    def chat(self, model: str, key: str | None = None, **extra: object) -> httpx.Response:
        with self.client(key or self.key) as client:
            return client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


def _status(cpu_rate: float = 0.0) -> dict[str, Any]:
    gpu = {"index": 0, "name": "Simulated", "memory_total": 8 << 30, "simulated": True}
    return {"cpu": {"total": 4, "utilization_rate": cpu_rate}, "memory": {"total": 16 << 30}, "gpu_devices": [gpu]}


def _register(server: RunningServer, name: str, port: int) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/v2/workers/register",
        headers={"Authorization": f"Bearer {server.token}"},
        json={"name": name, "ip": "127.0.0.1", "port": port, "status": _status()},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _report(server: RunningServer, credential: str) -> None:
    r = httpx.post(
        f"{server.url}/v2/workers/me/status",
        headers={"Authorization": f"Bearer {credential}"},
        json={"status": _status(12.5)},
    )
    assert r.status_code == 200 and r.json()["state"] == "ready", r.text


def _insert_instances(db_url: str, rows: list[ModelInstance]) -> list[int]:
    engine = create_engine(db_url, connect_args={"timeout": 10})
    try:
        with Session(engine) as session:
            session.add_all(rows)
            session.commit()
            return [r.id for r in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    tmp: Path = tmp_path_factory.mktemp("gateway")
    db_url = f"sqlite:///{tmp / 'gw.db'}"
    with run_server(tmp / "data", db_url, hooks=[start_gateway]) as server, StandIn() as engine:
        admin = server.admin()
        keys = {}
        for name, allowed in (("full", []), ("limited", ["gw-chat"])):
            r = admin.post("/v2/api-keys", json={"name": name, "allowed_model_names": allowed})
            assert r.status_code == 201, r.text
            keys[name] = r.json()["value"]
        gw = Gw(server, engine, db_url, keys["full"], keys["limited"])

        # a: answers on the stand-in; b: its port is closed; c: registered but never reported (not ready)
        workers = {
            "a": _register(server, "gw-worker-a", engine.port),
            "b": _register(server, "gw-worker-b", free_port()),
        }
        workers["c"] = _register(server, "gw-worker-c", engine.port)
        for ready in (workers["a"], workers["b"]):
            _report(server, ready["credential"])
        gw.proxy_credentials = {info["name"]: info["proxy_credential"] for info in workers.values()}

        model_ids = {}
        for name in ("gw-chat", "gw-fallback", "gw-idle", "gw-dead", "gw-notready"):
            r = admin.post("/v2/models", json={"name": name, "local_path": "/models/tiny.gguf", "replicas": 0})
            assert r.status_code == 201, r.text
            model_ids[name] = r.json()["id"]
        placement = [("gw-chat", "a"), ("gw-chat", "a"), ("gw-fallback", "b"), ("gw-fallback", "a")]
        placement += [("gw-notready", "c"), ("gw-dead", "b")]
        rows = [
            ModelInstance(
                name=f"{model}-{i}",
                model_id=model_ids[model],
                model_name=model,
                worker_id=workers[w]["id"],
                worker_name=workers[w]["name"],
                worker_ip="127.0.0.1",
                gpu_indexes=[0],
                # c's instance claims to run although its worker is not ready
                state=InstanceState.RUNNING if w == "c" else InstanceState.SCHEDULED,
            )
            for i, (model, w) in enumerate(placement)
        ]
        ids = _insert_instances(db_url, rows)
        for iid, (model, w) in zip(ids, placement, strict=True):
            gw.instances.setdefault(model, []).append(iid)
            engine.expected[iid] = workers[w]["proxy_credential"]
        # the owning workers report them running, as a real worker would (each report refreshes routing)
        for iid, (_, w) in zip(ids, placement, strict=True):
            if w == "c":
                continue
            r = httpx.patch(
                f"{server.url}/v2/model-instances/{iid}",
                headers={"Authorization": f"Bearer {workers[w]['credential']}"},
                json={"state": "running", "port": 40000 + iid},
            )
            assert r.status_code == 200 and r.json()["state"] == "running", r.text
        # gw-dead's instance was reported last: once it has a route, every route is in the table
        deadline = time.monotonic() + 15
        while "No replica could take" not in gw.chat("gw-dead").text:
            assert time.monotonic() < deadline, "routing table never picked up the running instances"
            time.sleep(0.05)
        admin.close()
        yield gw


def _error(r: httpx.Response, status: int, err_type: str, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == err_type
    assert body["error"]["code"] == code
    assert body["error"]["param"] is None
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def test_missing_or_bad_key_is_openai_shaped_401(gw: Gw) -> None:
    before = len(gw.engine.seen)
    with gw.client() as anonymous:
        _error(anonymous.post(CHAT, json={"model": "gw-chat"}), 401, "authentication_error")
        _error(anonymous.get("/v1/models"), 401, "authentication_error")
    with gw.client("gpustack_0123456789abcdef_" + "0" * 48) as wrong:
        _error(wrong.post(CHAT, json={"model": "gw-chat"}), 401, "authentication_error")
    with gw.client("not-a-key") as garbage:
        _error(garbage.get("/v1/models"), 401, "authentication_error")
    assert len(gw.engine.seen) == before, "nothing unauthenticated reaches a worker"


def test_request_without_model_is_400(gw: Gw) -> None:
    with gw.client(gw.key) as client:
        message = _error(client.post(CHAT, json={"messages": []}), 400, "invalid_request_error")
        assert "model" in message
        _error(
            client.post(CHAT, content=b"not json", headers={"content-type": "application/json"}),
            400,
            "invalid_request_error",
        )
        _error(client.post(CHAT, json={"model": 42}), 400, "invalid_request_error")


def test_untyped_json_body_is_forwarded_as_json(gw: Gw) -> None:
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; the README's chat curl must still work."""
    before = len(gw.engine.seen)
    body = json.dumps({"model": "gw-chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with gw.client(gw.key) as client:
        for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
            headers = {"content-type": content_type} if content_type else {}
            r = client.post(CHAT, content=body, headers=headers)
            assert r.status_code == 200, r.text
    seen = gw.engine.seen[before:]
    assert len(seen) == 3
    assert {s["headers"]["content-type"] for s in seen} == {"application/json"}
    assert all(s["body"] == body for s in seen)


def test_invalid_json_is_an_openai_400_that_leaks_nothing(gw: Gw) -> None:
    before = len(gw.engine.seen)
    with gw.client(gw.key) as client:
        for content in (b'{"model": "gw-chat", "messages": [', b"\xff\xfe", b"[1, 2]", b""):
            for content_type in ("application/json", "application/x-www-form-urlencoded"):
                r = client.post(CHAT, content=content, headers={"content-type": content_type})
                message = _error(r, 400, "invalid_request_error")
                assert "JSON" in message
                assert "/" not in message and "Traceback" not in r.text
    assert len(gw.engine.seen) == before, "invalid bodies never reach an engine"


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400_not_500(gw: Gw, depth: int) -> None:
    body = b'{"model": "gw-chat", "x": ' + b"[" * depth + b"]" * depth + b"}"
    with gw.client(gw.key) as client:
        r = client.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert "nested too deeply" in _error(r, 400, "invalid_request_error")


def test_key_limited_to_other_models_is_403(gw: Gw) -> None:
    message = _error(gw.chat("gw-idle", key=gw.limited_key), 403, "permission_error")
    assert "gw-idle" in message
    # a limited key is refused before existence is revealed
    _error(gw.chat("no-such-model", key=gw.limited_key), 403, "permission_error")
    assert gw.chat("gw-chat", key=gw.limited_key).status_code == 200


def test_unknown_model_is_404_model_not_found(gw: Gw) -> None:
    message = _error(gw.chat("no-such-model"), 404, "invalid_request_error", "model_not_found")
    assert "no-such-model" in message


def test_model_without_running_replica_is_503(gw: Gw) -> None:
    assert "gw-idle" in _error(gw.chat("gw-idle"), 503, "service_unavailable")
    # running on a worker that is not ready does not count as a route
    assert "gw-notready" in _error(gw.chat("gw-notready"), 503, "service_unavailable")


def test_every_route_unreachable_is_503(gw: Gw) -> None:
    message = _error(gw.chat("gw-dead"), 503, "service_unavailable")
    assert "No replica could take the request" in message and "gw-worker-b" in message


def test_models_list_is_filtered_by_the_keys_allowed_models(gw: Gw) -> None:
    with gw.client(gw.key) as client:
        r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    names = [m["id"] for m in body["data"]]
    assert names == sorted(names)
    # listed: what can answer now (a running replica on a ready worker); not gw-idle, not gw-notready
    assert {"gw-chat", "gw-fallback", "gw-dead"} <= set(names)
    assert not {"gw-idle", "gw-notready"} & set(names)
    for m in body["data"]:
        assert m["object"] == "model" and m["owned_by"] == "gpustack"
        assert abs(m["created"] - time.time()) < 600, "created is a UTC epoch from the model row"

    with gw.client(gw.limited_key) as client:
        limited = client.get("/v1/models").json()
    assert [m["id"] for m in limited["data"]] == ["gw-chat"]


def test_chat_is_forwarded_with_the_proxy_credential_and_the_same_body(gw: Gw) -> None:
    before = len(gw.engine.seen)
    body = json.dumps({"model": "gw-chat", "messages": [{"role": "user", "content": "héllo"}], "seed": 7}).encode()
    with gw.client(gw.key) as client:
        r = client.post(
            CHAT,
            content=body,
            headers={"content-type": "application/json", "x-trace-id": "abc123", "cookie": "gpustack_session=x"},
        )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model"] == "gw-chat" and answer["instance"] in gw.instances["gw-chat"]
    assert answer["choices"][0]["message"]["content"] == f"echo from {answer['instance']}"
    assert r.headers["x-engine"] == "stand-in"
    for single in ("date", "server", "content-type"):
        assert len(r.headers.get_list(single)) == 1, r.headers.multi_items()

    [seen] = gw.engine.seen[before:]
    assert seen["path"] == f"/proxy/{answer['instance']}{CHAT}"
    assert seen["headers"]["authorization"] == f"Bearer {gw.proxy_credentials['gw-worker-a']}"
    assert seen["body"] == body
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-trace-id"] == "abc123"
    assert "cookie" not in seen["headers"]
    assert not any(gw.key in value for value in seen["headers"].values()), "the user's API key must not leak"


def test_streaming_answer_arrives_chunk_by_chunk(gw: Gw) -> None:
    payload = {"model": "gw-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks: list[tuple[float, bytes]] = []
    with gw.client(gw.key) as client:
        start = time.monotonic()
        with client.stream("POST", CHAT, json=payload) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for chunk in r.iter_raw():
                chunks.append((time.monotonic() - start, chunk))
    total = chunks[-1][0]
    assert len(chunks) >= CHUNKS, f"expected separate chunks, got {len(chunks)}"
    assert total >= CHUNK_DELAY * (CHUNKS - 1)
    assert chunks[0][0] < total - CHUNK_DELAY * 2, "the first chunk must not wait for the whole answer"
    events = [e for e in b"".join(c for _, c in chunks).decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    data = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert [d["index"] for d in data] == list(range(CHUNKS))
    assert len({d["instance"] for d in data}) == 1 and data[0]["instance"] in gw.instances["gw-chat"]


def test_round_robin_alternates_between_running_instances(gw: Gw) -> None:
    served = []
    for _ in range(6):
        r = gw.chat("gw-chat")
        assert r.status_code == 200, r.text
        served.append(r.json()["instance"])
    assert set(served) == set(gw.instances["gw-chat"])
    assert all(a != b for a, b in zip(served, served[1:], strict=False)), served


def test_closed_route_falls_back_to_the_next_one(gw: Gw) -> None:
    closed, alive = gw.instances["gw-fallback"]
    before = len(gw.engine.seen)
    for _ in range(4):  # round-robin starts on the closed route for half of them
        r = gw.chat("gw-fallback")
        assert r.status_code == 200, r.text
        assert r.json()["instance"] == alive
    assert [s["iid"] for s in gw.engine.seen[before:]] == [alive] * 4
    assert closed not in [s["iid"] for s in gw.engine.seen]


def test_replica_the_worker_says_is_not_running_is_skipped(gw: Gw) -> None:
    """A stale route (the worker proxy answers for itself, not the engine) falls through to another replica."""
    stale, alive = gw.instances["gw-chat"]
    gw.engine.not_running.add(stale)
    try:
        for _ in range(4):
            r = gw.chat("gw-chat")
            assert r.status_code == 200, r.text
            assert r.json()["instance"] == alive
        gw.engine.not_running.add(alive)
        r = gw.chat("gw-chat")
        assert r.status_code == 503
        assert "not running" in r.json()["error"]["message"]
    finally:
        gw.engine.not_running.clear()


async def test_routing_table_uses_ready_workers_and_utc_created(gw: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuilt straight from the server's database, with a local timezone far from UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    db = Database(gw.db_url)
    try:
        table = RoutingTable()
        await table.refresh(db)
    finally:
        await db.dispose()
        monkeypatch.undo()
        time.tzset()
    chat = table.models["gw-chat"]
    assert [r.instance_id for r in chat.routes] == gw.instances["gw-chat"]
    assert all(r.base_url == f"http://127.0.0.1:{gw.engine.port}/proxy/{r.instance_id}" for r in chat.routes)
    assert {r.worker_name for r in table.models["gw-fallback"].routes} == {"gw-worker-a", "gw-worker-b"}
    assert table.models["gw-idle"].routes == () and table.models["gw-notready"].routes == ()
    assert abs(chat.created - time.time()) < 600
    first = [r.instance_id for r in chat.ordered()]
    assert [r.instance_id for r in chat.ordered()] == first[1:] + first[:1]


def test_retrieve_model_follows_the_list_rule(gw: Gw) -> None:
    with gw.client(gw.key) as client:
        r = client.get("/v1/models/gw-chat")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == "gw-chat" and r.json()["object"] == "model"
        assert "no running replica" in _error(
            client.get("/v1/models/gw-idle"), 404, "invalid_request_error", "model_not_found"
        )
        _error(client.get("/v1/models/nope"), 404, "invalid_request_error", "model_not_found")
    with gw.client(gw.limited_key) as client:
        _error(client.get("/v1/models/gw-fallback"), 404, "invalid_request_error", "model_not_found")
    with gw.client() as anonymous:
        _error(anonymous.get("/v1/models/gw-chat"), 401, "authentication_error")


def test_unsupported_endpoints_are_openai_shaped(gw: Gw) -> None:
    with gw.client(gw.key) as client:
        message = _error(
            client.post("/v1/moderations", json={"input": "x"}), 404, "invalid_request_error", "unsupported_endpoint"
        )
        assert "/v1/moderations" in message and "/v1/chat/completions" in message
        assert "POST" in _error(client.get(CHAT), 405, "invalid_request_error")
        # the engine has no /v1/embeddings: its bare 404 becomes an error that says so
        message = _error(
            client.post("/v1/embeddings", json={"model": "gw-chat", "input": "x"}),
            404,
            "invalid_request_error",
            "unsupported_endpoint",
        )
        assert "gw-chat" in message and "/v1/embeddings" in message


def test_endpoint_outside_the_models_categories_is_refused(gw: Gw) -> None:
    with gw.server.admin() as admin:
        r = admin.post(
            "/v2/models", json={"name": "gw-embed", "local_path": "/m.gguf", "replicas": 0, "categories": ["embedding"]}
        )
        assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10
    while (r := gw.chat("gw-embed")).status_code == 404:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.05)
    message = _error(r, 400, "invalid_request_error", "unsupported_model_category")
    assert "embedding" in message and "llm" in message


def test_v1_openai_alias_serves_the_same_api(gw: Gw) -> None:
    with gw.client(gw.key) as client:
        assert client.get("/v1-openai/models").json() == client.get("/v1/models").json()
        r = client.post("/v1-openai/chat/completions", json={"model": "gw-chat", "messages": []})
        assert r.status_code == 200 and r.json()["model"] == "gw-chat", r.text
    seen = gw.engine.seen[-1]
    assert seen["path"].endswith("/v1/chat/completions")


def _user_key(gw: Gw, **fields: object) -> tuple[dict[str, Any], str]:
    """A new user with an API key of their own."""
    username = f"gw-user-{time.monotonic_ns()}"
    with gw.server.admin() as admin:
        user = admin.post("/v2/users", json={"username": username, "password": "pw-123456"}).json()
    with gw.server.client(auth=(username, "pw-123456")) as own:
        r = own.post("/v2/api-keys", json={"name": "k", **fields})
    assert r.status_code == 201, r.text
    return user, r.json()


def test_deleted_keys_and_users_stop_working_at_once(gw: Gw) -> None:
    user, key = _user_key(gw)
    assert gw.chat("gw-chat", key=key["value"]).status_code == 200  # now cached
    with gw.server.admin() as admin:
        assert admin.delete(f"/v2/api-keys/{key['id']}").status_code == 204
    _error(gw.chat("gw-chat", key=key["value"]), 401, "authentication_error")

    user, key = _user_key(gw)
    assert gw.chat("gw-chat", key=key["value"]).status_code == 200
    with gw.server.admin() as admin:
        assert admin.delete(f"/v2/users/{user['id']}").status_code == 204
    _error(gw.chat("gw-chat", key=key["value"]), 401, "authentication_error")


def test_an_expiring_key_stops_working_when_it_expires(gw: Gw) -> None:
    _, key = _user_key(gw, expires_in_seconds=2)
    assert gw.chat("gw-chat", key=key["value"]).status_code == 200  # cached, but not past its expiry
    time.sleep(3.1)
    assert "expired" in _error(gw.chat("gw-chat", key=key["value"]), 401, "authentication_error")


def test_a_management_only_key_is_refused_on_v1(gw: Gw) -> None:
    _, key = _user_key(gw, scope=["management"])
    message = _error(gw.chat("gw-chat", key=key["value"]), 403, "permission_error")
    assert "'inference' scope" in message
