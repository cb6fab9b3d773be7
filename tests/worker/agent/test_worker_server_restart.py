"""A server restart must not kill engines: the worker reconnects, resyncs and re-reports running."""

import asyncio
import secrets
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from agent_harness import FAST, fake_engine_command, pid_alive, run_agent, wait_for
from fastapi import FastAPI

from gpustack.config import Config
from gpustack.core.tasks import TaskGroup
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.server.app import create_app
from gpustack.server.db import Database
from tests.utils.server import ADMIN_PASSWORD, free_port


class ServerThread:
    """The server app on a fixed port in a thread, so it can stop and start again at the same URL."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{config.port}"
        self.app: FastAPI | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _capture(self, app: FastAPI, _tasks: TaskGroup) -> None:
        self.app, self.loop = app, asyncio.get_running_loop()

    def start(self) -> None:
        app = create_app(self.config, start_hooks=[self._capture])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.config.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for(lambda: _ready(self.url), 30, "the server")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        assert not self._thread.is_alive() and not _ready(self.url)

    def run(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _mark_unreachable(db_url: str, instance_id: int) -> None:
    """What the server's health controller does to instances of a silent worker (server is down)."""

    async def update() -> None:
        db = Database(db_url)
        try:
            async with db.session() as session:
                inst = await session.get(ModelInstance, instance_id)
                assert inst is not None
                inst.state = InstanceState.UNREACHABLE
                await session.commit()
        finally:
            await db.dispose()

    asyncio.run(update())


def _place(server: ServerThread, model: dict[str, Any], worker_id: int, worker_name: str) -> int:
    async def insert() -> int:
        assert server.app is not None
        async with server.app.state.db.session() as session:
            inst = ModelInstance(
                name=f"{model['name']}-{secrets.token_hex(3)}",
                model_id=model["id"],
                model_name=model["name"],
                worker_id=worker_id,
                worker_name=worker_name,
                state=InstanceState.SCHEDULED,
            )
            session.add(inst)
            await session.commit()
            assert inst.id is not None
            return inst.id

    return int(server.run(insert()))


def _configs(tmp_path: Path) -> tuple[Config, Config]:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    server = Config(
        data_dir=tmp_path / "server", database_url=db_url, host="127.0.0.1", port=free_port(),
        bootstrap_password=ADMIN_PASSWORD,
    )  # fmt: skip
    worker = Config(
        data_dir=tmp_path / "worker", token=server.ensure_token(), server_url=f"http://127.0.0.1:{server.port}",
        host="127.0.0.1", worker_name="restart-w", worker_port=free_port(), instance_port_range="43510-43529",
        heartbeat_interval_seconds=0.5, resync_seconds=300.0,
    )  # fmt: skip
    return server, worker


def test_engines_survive_a_server_restart(tmp_path: Path) -> None:
    server_config, worker_config = _configs(tmp_path)
    server = ServerThread(server_config)
    server.start()
    admin = httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=10)
    try:
        with run_agent(worker_config, server.url, FAST) as (agent, _loop):
            body = {"name": "restart-m", "backend": "custom", "local_path": str(tmp_path)}
            model = admin.post("/v2/models", json={**body, "run_command": fake_engine_command()}).json()
            instance_id = _place(server, model, agent.client.worker_id or 0, agent.name)
            running = wait_for(lambda: _state(admin, instance_id, "running"), 20, "running")

            server.stop()
            _mark_unreachable(str(server_config.database_url), instance_id)
            credential = agent.client.proxy_credential
            proxied = httpx.get(
                f"http://127.0.0.1:{worker_config.worker_port}/proxy/{instance_id}/v1/models",
                headers={"Authorization": f"Bearer {credential}"},
            )
            assert proxied.status_code == 200 and pid_alive(running["pid"])

            server.start()
            again = wait_for(lambda: _state(admin, instance_id, "running"), 20, "running re-reported")
            assert (again["pid"], again["port"]) == (running["pid"], running["port"])
    finally:
        admin.close()
        server.stop()
    assert not pid_alive(running["pid"])  # the worker stops its engines when it stops


def _state(admin: httpx.Client, instance_id: int, state: str) -> dict[str, Any] | None:
    try:
        inst = admin.get(f"/v2/model-instances/{instance_id}").json()
    except httpx.TransportError:
        return None
    return dict(inst) if inst.get("state") == state else None
