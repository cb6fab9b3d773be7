"""`gpustack start` checks ports and the data dir first: one `error:` line, exit != 0, nothing written."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpustack.config import Config
from gpustack.preflight import PreflightError, check_ports, port_free
from tests.utils.server import free_port


def _start(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gpustack.cli", "start", "--host", "127.0.0.1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_server_port_in_use(tmp_path: Path, held_port: int) -> None:
    data = tmp_path / "data"
    line = _one_error_line(_start("--data-dir", str(data), "--port", str(held_port), "--disable-worker"))
    assert f"server port {held_port}" in line and "--port" in line
    assert not data.exists(), "no password, token or database may be written"


def test_worker_port_in_use(tmp_path: Path, held_port: int) -> None:
    data = tmp_path / "data"
    line = _one_error_line(_start("--data-dir", str(data), "--port", str(free_port()), "--worker-port", str(held_port)))
    assert f"worker port {held_port}" in line and "--worker-port" in line
    assert not data.exists()
    worker = _start("--data-dir", str(data), "--server-url", "http://127.0.0.1:1", "--token", "t",
                    "--worker-port", str(held_port))  # fmt: skip
    assert f"worker port {held_port}" in _one_error_line(worker)


def test_same_port_for_server_and_worker(tmp_path: Path) -> None:
    port = str(free_port())
    line = _one_error_line(_start("--data-dir", str(tmp_path), "--port", port, "--worker-port", port))
    assert port in line and "--worker-port" in line


def test_bad_data_dir_is_one_error_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for data_dir in (not_a_dir, not_a_dir / "sub"):
        line = _one_error_line(_start("--data-dir", str(data_dir), "--port", str(free_port()), "--disable-worker"))
        assert str(data_dir) in line and "--data-dir" in line
    migrate = subprocess.run(
        [sys.executable, "-m", "gpustack.cli", "migrate", "--data-dir", str(not_a_dir)], capture_output=True, text=True
    )
    assert str(not_a_dir) in _one_error_line(migrate)


def test_port_free_follows_listeners(held_port: int) -> None:
    assert not port_free("127.0.0.1", held_port)
    assert port_free("127.0.0.1", free_port())
    with pytest.raises(PreflightError, match=str(held_port)):
        check_ports(Config(host="127.0.0.1", port=held_port, disable_worker=True))
    check_ports(Config(host="127.0.0.1", port=held_port, server_url="http://h:1", worker_port=free_port()))
