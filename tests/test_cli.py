"""The `gpustack` command: version, migrate, reset-admin-password, and clear errors on bad input."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gpustack import __version__
from gpustack.cli import main
from tests.utils.server import free_port, run_server, wait_ready


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gpustack.cli", *args], capture_output=True, text=True, timeout=120)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_dash_dash_version() -> None:
    result = _cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gpustack {__version__}"


def test_start_help_shows_defaults_and_environment_variables() -> None:
    result = _cli("start", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for expected in (
        "(default: 8080; env GPUSTACK_PORT)",
        "(default: 10150; env GPUSTACK_WORKER_PORT)",
        "(default: 40000-40999; env GPUSTACK_INSTANCE_PORT_RANGE)",
        "(default: process; env GPUSTACK_RUNTIME)",
        "env GPUSTACK_DATA_DIR",
        "GPUSTACK_HEARTBEAT_INTERVAL_SECONDS",
    ):
        assert expected in text, expected
    assert "env GPUSTACK_DATA_DIR" in " ".join(_cli("migrate", "--help").stdout.split())


def test_bad_config_exits_non_zero_with_message(tmp_path: Path) -> None:
    result = _cli("start", "--data-dir", str(tmp_path), "--database-url", "oracle://nope")
    assert result.returncode == 2
    assert "database_url" in result.stderr


def test_bad_gpu_overhead_flag_exits_non_zero_with_message(tmp_path: Path) -> None:
    result = _cli("start", "--data-dir", str(tmp_path), "--gpu-runtime-overhead", "lots")
    assert result.returncode == 2
    assert "gpu_runtime_overhead" in result.stderr and "invalid size 'lots'" in result.stderr


def test_unreadable_config_file_exits_non_zero(tmp_path: Path) -> None:
    result = _cli("start", "--config-file", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr


def test_worker_without_token_is_refused(tmp_path: Path) -> None:
    result = _cli("start", "--data-dir", str(tmp_path), "--server-url", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert "--token" in result.stderr


def test_worker_token_file_is_read_and_a_missing_one_refused(tmp_path: Path) -> None:
    missing = _cli("start", "--server-url", "http://127.0.0.1:1", "--token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "cannot read token file" in missing.stderr and "nope" in missing.stderr


def test_migrate_then_reset_admin_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli("migrate", "--data-dir", str(data)).returncode == 0
    assert (data / "database.db").exists()
    url = f"sqlite:///{data / 'database.db'}"
    with run_server(data, url):  # bootstraps admin with the test password
        pass
    stale = data / "initial_admin_password"
    stale.write_text("old-generated-password\n")
    result = _cli("reset-admin-password", "--data-dir", str(data), "--password", "brand-new-pass")
    assert result.returncode == 0, result.stderr
    assert not stale.exists(), "the old generated password file must not outlive a reset"
    with run_server(data, url) as server:
        assert httpx.get(f"{server.url}/v2/users/me", auth=("admin", "brand-new-pass")).status_code == 200
    bad = _cli("reset-admin-password", "--data-dir", str(data), "--username", "ghost", "--password", "whatever1")
    assert bad.returncode == 2 and "ghost" in bad.stderr


def test_generated_admin_password_is_written(tmp_path: Path) -> None:
    data = tmp_path / "gen"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpustack.cli", "start", "--data-dir", str(data), "--host", "127.0.0.1",
         "--port", str(port), "--disable-worker"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", alive=lambda: proc.poll() is None)
        password = (data / "initial_admin_password").read_text().strip()
        me = httpx.get(f"http://127.0.0.1:{port}/v2/users/me", auth=("admin", password))
        assert me.status_code == 200 and me.json()["require_password_change"] is True
        # once the admin sets a password the generated one is gone, file included
        change = {"current_password": password, "new_password": "chosen-by-admin"}
        r = httpx.post(f"http://127.0.0.1:{port}/v2/users/me/password", json=change, auth=("admin", password))
        assert r.status_code == 200 and r.json()["require_password_change"] is False, r.text
        assert not (data / "initial_admin_password").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("name", ["secret_key", "token"])
def test_start_refuses_an_empty_secret_file(tmp_path: Path, name: str) -> None:
    """A zero-byte secret left by a full disk stops the start with one clear line, not a forgeable server."""
    data = tmp_path / "data"
    data.mkdir()
    (data / name).write_bytes(b"")
    result = _cli("start", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(free_port()),
                  "--disable-worker")  # fmt: skip
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(data / name) in errors[0] and "delete it" in errors[0]
    assert "Traceback" not in result.stderr
    assert (data / name).read_bytes() == b""  # left for the operator to inspect, never silently replaced
