"""Runs a real server (uvicorn on a free loopback port) in a background thread for API tests."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from gpustack.config import Config
from gpustack.server.app import StartHook, create_app
from gpustack.server.serving import GracefulServer
from tests.utils.openapi_contract import assert_response_contract

ADMIN_PASSWORD = "admin-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, *, alive: Callable[[], bool], timeout: float = 60) -> None:
    """Polls `/readyz` until it answers 200; fails at once if the server (thread or process) dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not alive():
            raise RuntimeError(f"the server at {url} died during start-up")
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not become ready within {timeout}s")


@dataclass
class RunningServer:
    url: str
    config: Config
    token: str

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def admin(self) -> httpx.Client:
        """Basic-auth admin client; its answers are checked against GPUStack's OpenAPI document."""
        return self.client(auth=("admin", ADMIN_PASSWORD), event_hooks={"response": [assert_response_contract]})


@contextmanager
def run_server(
    data_dir: Path, database_url: str, hooks: list[StartHook] | None = None, **overrides: object
) -> Iterator[RunningServer]:
    port = free_port()
    config = Config(
        data_dir=data_dir,
        database_url=database_url,
        host="127.0.0.1",
        port=port,
        bootstrap_password=ADMIN_PASSWORD,
        **overrides,  # type: ignore[arg-type]
    )
    app = create_app(config, start_hooks=hooks)
    server = GracefulServer(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, alive=thread.is_alive)
    try:
        yield RunningServer(url=url, config=config, token=config.ensure_token())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
