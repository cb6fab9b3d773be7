"""Start-up checks that run before anything is written or bound: data dir and ports."""

import socket
import tempfile
from pathlib import Path

from gpustack.config import Config


class PreflightError(ValueError):
    """A start-up problem the user must fix; the message says what and how."""


def check_data_dir(path: Path) -> None:
    """The data dir exists (created when missing) and accepts new files."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = (
            "it or a parent is not a directory"
            if isinstance(exc, FileExistsError | NotADirectoryError)
            else exc.strerror
        )
        raise PreflightError(
            f"cannot use the data dir {path}: {reason}; fix its permissions or choose another with "
            "--data-dir (env GPUSTACK_DATA_DIR)"
        ) from None


def port_free(host: str, port: int) -> bool:
    """True when a TCP listener could bind host:port now (same SO_REUSEADDR rule as the real servers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ports(config: Config) -> list[tuple[str, int, str]]:
    """(what, port, flag) for each port this start will listen on."""
    wanted = []
    if not config.server_url:
        wanted.append(("server", config.port, "--port (env GPUSTACK_PORT)"))
    if config.server_url or not config.disable_worker:
        wanted.append(("worker", config.worker_port, "--worker-port (env GPUSTACK_WORKER_PORT)"))
    return wanted


def check_ports(config: Config) -> None:
    wanted = _ports(config)
    if len({port for _, port, _ in wanted}) < len(wanted):
        raise PreflightError(
            f"the server and the embedded worker both want port {config.port}; give the worker another "
            "with --worker-port (env GPUSTACK_WORKER_PORT)"
        )
    host = config.host or "0.0.0.0"
    for what, port, flag in wanted:
        if not port_free(host, port):
            raise PreflightError(
                f"the {what} port {port} is already in use on {host}: stop the program holding it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port with {flag}"
            )


def check_command(command: str, config: Config) -> None:
    """The checks for one CLI command (the data dir only matters where something is written to it)."""
    if command == "start":
        check_start(config)
    elif command == "migrate" or not config.database_url:
        check_data_dir(config.data_dir)


def check_start(config: Config) -> None:
    """Everything `gpustack start` verifies before it writes a file or opens a socket."""
    check_ports(config)
    check_data_dir(config.data_dir)
