"""ServerClient against a real server: registration, re-registration on 401, error types."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpustack.schemas.workers import WorkerRegister, WorkerStatus, WorkerStatusReport
from gpustack.worker.agent import bind_socket, detect_worker_ip
from gpustack.worker.client import (
    ServerClient,
    ServerResponseError,
    ServerUnreachableError,
    is_retryable,
)
from tests.utils.server import RunningServer, free_port, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("client")
    with run_server(tmp / "data", f"sqlite:///{tmp / 'db.sqlite'}") as running:
        yield running


def _client(url: str, token: str, name: str) -> ServerClient:
    async def payload() -> WorkerRegister:
        return WorkerRegister(name=name, ip="127.0.0.1", port=1234, status=WorkerStatus())

    return ServerClient(url, token, payload)


async def test_register_and_reregister_after_401(server: RunningServer) -> None:
    client = _client(server.url, server.token, f"c-{secrets.token_hex(3)}")
    try:
        first = await client.register()
        assert first.credential.startswith("gpsw_") and first.proxy_credential
        with server.admin() as admin:  # the worker row and its credential are gone
            assert admin.delete(f"/v2/workers/{first.id}").status_code == 204
        await client.report_status(WorkerStatusReport(status=WorkerStatus(), ip="127.0.0.1", port=1234))
        assert client.registration.credential != first.credential  # registered again (SQLite may reuse the id)
        assert client.worker_id is not None
        assert await client.list_instances(client.worker_id) == []
    finally:
        await client.aclose()


async def test_the_registration_secret_is_kept_in_the_data_dir_and_guards_the_name(
    server: RunningServer, tmp_path: Path
) -> None:
    name = f"c-{secrets.token_hex(3)}"

    async def payload() -> WorkerRegister:
        return WorkerRegister(name=name, ip="127.0.0.1", port=1234, status=WorkerStatus())

    secret_file = tmp_path / "worker_secret"
    for _ in range(2):  # a restart with the same data dir registers again under its name
        client = ServerClient(server.url, server.token, payload, secret_path=secret_file)
        try:
            registered = await client.register()
        finally:
            await client.aclose()
        assert secret_file.read_text().strip() == registered.secret
        assert secret_file.stat().st_mode & 0o777 == 0o600
    impostor = ServerClient(server.url, server.token, payload, secret_path=tmp_path / "other" / "worker_secret")
    try:
        with pytest.raises(ServerResponseError) as caught:
            await impostor.register()
    finally:
        await impostor.aclose()
    assert caught.value.status_code == 403 and "--worker-name" in caught.value.detail
    assert not is_retryable(caught.value)


async def test_bad_token_is_not_retryable(server: RunningServer) -> None:
    client = _client(server.url, "wrong-token", "c-bad")
    try:
        with pytest.raises(ServerResponseError) as caught:
            await client.register()
        assert caught.value.status_code == 401 and "cluster token" in str(caught.value)
        assert not is_retryable(caught.value)
    finally:
        await client.aclose()


async def test_unreachable_server_is_retryable() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}", "token", "c-none")
    try:
        with pytest.raises(ServerUnreachableError) as caught:
            await client.register()
        assert is_retryable(caught.value)
    finally:
        await client.aclose()


def test_worker_ip_for_loopback_servers() -> None:
    assert detect_worker_ip("http://127.0.0.1:8080") == "127.0.0.1"
    assert detect_worker_ip("http://localhost:8080") == "127.0.0.1"


def test_worker_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with bind_socket("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"worker port 127.0.0.1:{port} is not available"):
            bind_socket("127.0.0.1", port)
