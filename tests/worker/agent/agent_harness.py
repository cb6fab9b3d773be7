"""Test harness: a real server plus a real WorkerAgent in its own thread and event loop."""

import asyncio
import os
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from gpustack.config import Config
from gpustack.core.tasks import TaskGroup
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.worker.agent import WorkerAgent
from gpustack.worker.engine import ServeOptions
from tests.utils.server import RunningServer, free_port, run_server

T = TypeVar("T")
FAKE_ENGINE = Path(__file__).with_name("fake_engine.py").resolve()
FAST = ServeOptions(
    tick_seconds=0.5,
    monitor_seconds=0.1,
    health_timeout_seconds=20.0,
    health_poll_seconds=0.1,
    restart_base_seconds=1.0,
    restart_max_seconds=2.0,
    resend_seconds=1.0,
    stop_timeout_seconds=5.0,
)


def fake_engine_command() -> str:
    return f"{sys.executable} {FAKE_ENGINE} --host {{{{host}}}} --port {{{{port}}}} --model-name {{{{model_name}}}}"


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class StateRecorder:
    """Records every model-instance change the server publishes (what watch streams carry)."""

    events: list[dict[str, Any]] = field(default_factory=list)

    async def follow(self, app: FastAPI) -> None:
        with app.state.bus.subscribe("model_instances") as sub:
            while True:
                event = await sub.queue.get()
                if event is not None:
                    self.events.append(event.data)

    def states(self, instance_id: int) -> list[str]:
        return [e["state"] for e in list(self.events) if e["id"] == instance_id]


@dataclass
class Cluster:
    server: RunningServer
    server_app: FastAPI
    server_loop: asyncio.AbstractEventLoop
    agent: WorkerAgent
    agent_loop: asyncio.AbstractEventLoop
    worker_url: str
    recorder: StateRecorder
    model_dir: Path

    @property
    def worker_id(self) -> int:
        worker_id = self.agent.client.worker_id
        assert worker_id is not None
        return worker_id

    def auth(self) -> dict[str, str]:
        credential = self.agent.client.proxy_credential  # what the server would present
        return {"Authorization": f"Bearer {credential}"}

    def create_model(self, **fields: Any) -> dict[str, Any]:
        body = {"name": f"m-{secrets.token_hex(4)}", "backend": "custom", "run_command": fake_engine_command()}
        body.setdefault("local_path", str(self.model_dir))
        body.update(fields)
        with self.server.admin() as admin:
            response = admin.post("/v2/models", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def run_on_server(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.server_loop).result(timeout=10)

    def place_instance(self, model: dict[str, Any]) -> int:
        """Insert a scheduled instance for this worker through the server's own DB (events publish)."""

        async def insert() -> int:
            async with self.server_app.state.db.session() as session:
                inst = ModelInstance(
                    name=f"{model['name']}-{secrets.token_hex(3)}",
                    model_id=model["id"],
                    model_name=model["name"],
                    worker_id=self.worker_id,
                    worker_name=self.agent.name,
                    state=InstanceState.SCHEDULED,
                    gpu_indexes=[],
                )
                session.add(inst)
                await session.commit()
                assert inst.id is not None
                return inst.id

        return int(self.run_on_server(insert()))

    def instance(self, instance_id: int) -> dict[str, Any] | None:
        with self.server.admin() as admin:
            response = admin.get(f"/v2/model-instances/{instance_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_state(self, instance_id: int, state: str, timeout: float = 20.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            inst = self.instance(instance_id)
            return inst if inst and inst["state"] == state else None

        return wait_for(check, timeout, f"instance {instance_id} to be {state}")

    def resync_now(self) -> None:
        """What the periodic resync does (the harness sets resync_seconds high to test the watch)."""
        self.agent_loop.call_soon_threadsafe(self.agent.serve.request_resync)

    def proxy(self) -> httpx.Client:
        return httpx.Client(base_url=self.worker_url, timeout=10)


@contextmanager
def run_agent(
    config: Config, server_url: str, options: ServeOptions
) -> Iterator[tuple[WorkerAgent, asyncio.AbstractEventLoop]]:
    """A WorkerAgent running in a background thread with its own event loop."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    def main() -> None:
        loop = asyncio.new_event_loop()
        agent = WorkerAgent(config, server_url=server_url, options=options)
        holder.update(loop=loop, agent=agent)
        started.set()
        try:
            loop.run_until_complete(agent.run())
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True, name="worker-agent")
    thread.start()
    started.wait(10)
    agent: WorkerAgent = holder["agent"]
    try:
        wait_for(lambda: agent.client.worker_id, 20, "worker registration")
        yield agent, holder["loop"]
    finally:
        holder["loop"].call_soon_threadsafe(agent.stop)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker agent did not stop"


@contextmanager
def cluster(tmp: Path, **overrides: Any) -> Iterator[Cluster]:
    captured: dict[str, Any] = {}

    def capture(app: FastAPI, _tasks: TaskGroup) -> None:
        captured.update(app=app, loop=asyncio.get_running_loop())

    model_dir = tmp / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"\0" * 16)
    with run_server(tmp / "server", f"sqlite:///{tmp / 'db.sqlite'}", hooks=[capture]) as server:
        low = random.randrange(42000, 48000, 20)
        config = Config(
            data_dir=tmp / "worker",
            token=server.token,
            server_url=server.url,
            host="127.0.0.1",
            worker_name=f"w-{secrets.token_hex(3)}",
            worker_port=free_port(),
            instance_port_range=f"{low}-{low + 19}",
            heartbeat_interval_seconds=1.0,
            resync_seconds=300.0,
            gpu_runtime_overhead="1GiB",
            **overrides,
        )
        with run_agent(config, server.url, FAST) as (agent, agent_loop):
            recorder = StateRecorder()
            following = asyncio.run_coroutine_threadsafe(recorder.follow(captured["app"]), captured["loop"])
            try:
                yield Cluster(
                    server=server,
                    server_app=captured["app"],
                    server_loop=captured["loop"],
                    agent=agent,
                    agent_loop=agent_loop,
                    worker_url=f"http://127.0.0.1:{config.worker_port}",
                    recorder=recorder,
                    model_dir=model_dir,
                )
            finally:
                following.cancel()
