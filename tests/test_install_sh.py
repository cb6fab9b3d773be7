"""install.sh in a throwaway prefix: installs, writes the service, runs as the service would, upgrades in place,
uninstalls. The service file goes to a temporary --service-dir, so nothing is started or registered here."""

import os
import plistlib
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.utils.server import free_port, wait_ready

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "install.sh"


def _install(*args: str, os_name: str = "Linux") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSTACK_")}
    env["GPUSTACK_INSTALL_OS"] = os_name
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


@dataclass
class Installed:
    root: Path
    port: int
    worker_port: int

    @property
    def args(self) -> list[str]:
        return ["--prefix", str(self.root / "prefix"), "--bin-dir", str(self.root / "bin"),
                "--service-dir", str(self.root / "units"), "--data-dir", str(self.root / "data")]  # fmt: skip

    @property
    def unit(self) -> Path:
        return self.root / "units" / "gpustack.service"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    inst = Installed(tmp_path_factory.mktemp("install"), free_port(), free_port())
    result = _install(*inst.args, "--port", str(inst.port), "--worker-port", str(inst.worker_port))
    assert result.returncode == 0, result.stdout + result.stderr
    return inst


def _unit_values(unit: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line)


def test_installs_command_and_systemd_unit(installed: Installed) -> None:
    command = installed.root / "bin" / "gpustack"
    assert command.is_symlink()
    assert subprocess.run([command, "--version"], capture_output=True, text=True).stdout.startswith("gpustack ")
    unit = _unit_values(installed.unit)
    assert unit["ExecStart"] == f"{installed.root / 'prefix' / 'venv' / 'bin' / 'gpustack'} start"
    env_file = Path(unit["EnvironmentFile"])
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert f"GPUSTACK_PORT={installed.port}" in env_file.read_text().splitlines()


@pytest.fixture
def running(installed: Installed) -> Iterator[str]:
    """The installed server started exactly as systemd would: ExecStart with the EnvironmentFile."""
    unit = _unit_values(installed.unit)
    settings = dict(line.split("=", 1) for line in Path(unit["EnvironmentFile"]).read_text().splitlines())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSTACK_")} | settings
    env |= {"GPUSTACK_HOST": "127.0.0.1", "GPUSTACK_INSTANCE_PORT_RANGE": "45200-45249"}
    proc = subprocess.Popen(shlex.split(unit["ExecStart"]), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{installed.port}"
    try:
        wait_ready(url, alive=lambda: proc.poll() is None)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_service_command_serves(installed: Installed, running: str) -> None:
    assert httpx.get(f"{running}/healthz").status_code == 200
    assert (installed.root / "data" / "initial_admin_password").exists()


def test_running_again_upgrades_in_place(installed: Installed) -> None:
    before = installed.unit.read_text()
    again = _install(*installed.args, "--port", str(installed.port), "--worker-port", str(installed.worker_port))
    assert again.returncode == 0, again.stdout + again.stderr
    assert installed.unit.read_text() == before
    assert subprocess.run([installed.root / "bin" / "gpustack", "--version"]).returncode == 0


def test_launchd_plist_for_macos(installed: Installed, tmp_path: Path) -> None:
    args = [*installed.args[:4], "--service-dir", str(tmp_path), "--data-dir", str(installed.root / "data")]
    result = _install(*args, "--role", "worker", "--server-url", "http://head:8080", "--token", "t0k", os_name="Darwin")
    assert result.returncode == 0, result.stdout + result.stderr
    plist = plistlib.loads((tmp_path / "ai.gpustack.plist").read_bytes())
    assert plist["ProgramArguments"] == [str(installed.root / "prefix" / "venv" / "bin" / "gpustack"), "start"]
    assert plist["EnvironmentVariables"]["GPUSTACK_SERVER_URL"] == "http://head:8080"
    assert plist["EnvironmentVariables"]["GPUSTACK_TOKEN"] == "t0k"
    assert plist["KeepAlive"] is True and (tmp_path / "ai.gpustack.plist").stat().st_mode & 0o777 == 0o600


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    for args, expected in (
        (["--role", "worker"], "--server-url"),
        (["--role", "database"], "server or worker"),
        (["--port", "http"], "numbers"),
        (["--frobnicate"], "unknown option"),
    ):
        result = _install("--prefix", str(prefix), *args)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and expected in result.stderr, args
    assert not prefix.exists()


def test_uninstall_keeps_data_unless_purged(installed: Installed) -> None:
    removed = _install("--uninstall", *installed.args[:6])
    assert removed.returncode == 0, removed.stderr
    assert not (installed.root / "bin" / "gpustack").exists()
    assert not (installed.root / "prefix").exists() and not installed.unit.exists()
    assert (installed.root / "data").is_dir() and "data stays" in removed.stdout
    assert _install("--uninstall", *installed.args[:6]).returncode == 0  # nothing left: still fine
    purged = _install("--uninstall", "--purge", *installed.args)
    assert purged.returncode == 0 and not (installed.root / "data").exists(), purged.stdout + purged.stderr
