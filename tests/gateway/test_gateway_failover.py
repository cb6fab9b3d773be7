"""Gateway failover over real sockets: a worker that accepts connections but never answers (like a
SIGSTOPped process) or that drops the connection is skipped before the first byte, suspended, and never
turns into a bare 500."""

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gpustack.gateway.wiring import start_gateway
from gpustack.schemas.instances import InstanceState, ModelInstance
from tests.gateway.test_gateway_routes import CHAT, StandIn, _insert_instances, _register, _report
from tests.utils.server import RunningServer, run_server


class Blackhole:
    """A TCP server that accepts and then never answers (mode "silent") or reads the request and closes
    the connection without a response (mode "drop")."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "drop":
                conn.recv(65536)
                conn.close()
            else:
                self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@dataclass
class Setup:
    server: RunningServer
    key: str
    engine: StandIn
    silent: Blackhole
    drop: Blackhole


def _running(server: RunningServer, db_url: str, model: str, model_id: int, worker: dict[str, object]) -> int:
    row = ModelInstance(
        name=f"{model}-{worker['name']}",
        model_id=model_id,
        model_name=model,
        worker_id=worker["id"],
        worker_name=worker["name"],
        worker_ip="127.0.0.1",
        state=InstanceState.SCHEDULED,
    )
    [iid] = _insert_instances(db_url, [row])
    r = httpx.patch(
        f"{server.url}/v2/model-instances/{iid}",
        headers={"Authorization": f"Bearer {worker['credential']}"},
        json={"state": "running", "port": 40000 + iid},
    )
    assert r.status_code == 200, r.text
    return iid


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp: Path = tmp_path_factory.mktemp("failover")
    db_url = f"sqlite:///{tmp / 'gw.db'}"
    silent, drop = Blackhole("silent"), Blackhole("drop")
    with (
        run_server(tmp / "data", db_url, hooks=[start_gateway], gateway_first_byte_timeout_seconds=0.5) as server,
        StandIn() as engine,
    ):
        with server.admin() as admin:
            key = admin.post("/v2/api-keys", json={"name": "failover"}).json()["value"]
            ids = {}
            for name in ("fo-hung", "fo-drop", "fo-only-hung", "fo-only-drop"):
                r = admin.post("/v2/models", json={"name": name, "local_path": "/m/x.gguf", "replicas": 0})
                ids[name] = r.json()["id"]
        workers = {
            "good": _register(server, "fo-good", engine.port),
            "silent": _register(server, "fo-silent", silent.port),
            "drop": _register(server, "fo-drop", drop.port),
        }
        for worker in workers.values():
            _report(server, worker["credential"])
        for model, bad in (("fo-hung", "silent"), ("fo-drop", "drop")):
            engine.expected[_running(server, db_url, model, ids[model], workers["good"])] = workers["good"][
                "proxy_credential"
            ]
            _running(server, db_url, model, ids[model], workers[bad])
        _running(server, db_url, "fo-only-hung", ids["fo-only-hung"], workers["silent"])
        _running(server, db_url, "fo-only-drop", ids["fo-only-drop"], workers["drop"])
        time.sleep(0.5)  # the routing table refreshes on the instance events
        yield Setup(server, key, engine, silent, drop)
    silent.close()
    drop.close()


def _chat(setup: Setup, model: str) -> httpx.Response:
    with setup.server.client(headers={"Authorization": f"Bearer {setup.key}"}) as client:
        return client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_a_silent_worker_is_skipped_and_suspended(setup: Setup) -> None:
    for _ in range(4):  # round-robin puts the silent replica first for some of them
        r = _chat(setup, "fo-hung")
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].startswith("echo from")
    assert setup.silent.accepted == 2, "one request and its health probe; then the worker is out of routing"


def test_a_worker_dropping_the_connection_fails_over(setup: Setup) -> None:
    for _ in range(4):
        r = _chat(setup, "fo-drop")
        assert r.status_code == 200, r.text
    assert setup.drop.accepted >= 1


@pytest.mark.parametrize("model", ["fo-only-hung", "fo-only-drop"])
def test_no_answering_replica_is_an_openai_shaped_503(setup: Setup, model: str) -> None:
    r = _chat(setup, model)
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["type"] == "service_unavailable" and "No replica could take the request" in error["message"]
