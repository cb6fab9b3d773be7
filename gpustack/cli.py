"""Command line: `gpustack start|version|migrate|reset-admin-password` (one entry point)."""

import argparse
import asyncio
import getpass
import logging
import sys
from typing import Any

from pydantic import ValidationError

from gpustack import __version__
from gpustack.config import Config

logger = logging.getLogger("gpustack")

_START_FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("--config-file", {"help": "YAML file with options (keys as flag names without dashes)"}),
    ("--data-dir", {"help": "where the database, token and logs live"}),
    ("--host", {"help": "address the server binds to"}),
    ("--port", {"type": int, "help": "server port"}),
    (
        "--database-url",
        {"help": "sqlite:///path, postgresql://..., or mysql://... (default: SQLite in data dir)"},
    ),
    ("--bootstrap-password", {"help": "initial admin password (default: generated into the data dir)"}),
    (
        "--token",
        {
            "help": "cluster registration token (default: generated and saved in the data dir); visible in ps, "
            "so prefer --token-file or GPUSTACK_TOKEN"
        },
    ),
    ("--token-file", {"help": "read the cluster token from this file"}),
    ("--server-url", {"help": "run as a worker only, joining this server"}),
    ("--disable-worker", {"action": "store_const", "const": True, "help": "server without embedded worker"}),
    ("--worker-name", {"help": "worker name (default: hostname)"}),
    ("--worker-ip", {"help": "address the server uses to reach this worker (default: detected)"}),
    ("--worker-port", {"type": int, "help": "worker proxy port"}),
    ("--instance-port-range", {"help": "ports for inference engines, e.g. 40000-40999"}),
    ("--gpu-inventory", {"help": "YAML list of GPUs to simulate instead of detecting them"}),
    ("--runtime", {"choices": ["process", "docker"], "help": "how engines are launched"}),
    ("--image-registry", {"help": "docker runtime: registry for built-in backend images, e.g. mirror.local:5000"}),
    ("--image-namespace", {"help": "docker runtime: namespace for built-in backend images (default gpustack)"}),
    ("--gpu-runtime-overhead", {"help": "GPU memory per engine process beside its buffers, e.g. 640MiB"}),
    ("--gpu-headroom", {"help": "GPU memory the scheduler never claims on this worker, e.g. 256MiB"}),
    ("--log-level", {"choices": ["debug", "info", "warning", "error"]}),
    (
        "--gateway-first-byte-timeout-seconds",
        {"type": float, "help": "wait this long for a worker's answer before probing it and failing over"},
    ),
    ("--openai-max-body-mib", {"type": int, "help": "largest request body on /v1 routes, in MiB (default 100)"}),
    (
        "--metrics-token",
        {"help": "bearer token Prometheus presents to /metrics (admins' credentials work too); prefer the env var"},
    ),
]


def _described(flag: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The flag's help with its default and environment variable, read from Config."""
    name = flag[2:].replace("-", "_")
    field = Config.model_fields[name]
    default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    shown = "none" if default is None else str(default).lower() if isinstance(default, bool) else default
    help_text, env = kwargs.get("help", ""), f"env GPUSTACK_{name.upper()}"
    if "(default:" in help_text:  # the help says it better than the value (e.g. "generated")
        return {**kwargs, "help": f"{help_text[:-1]}; {env})"}
    return {**kwargs, "help": f"{help_text} (default: {shown}; {env})".lstrip()}


_START_EPILOG = (
    "Precedence: flag > GPUSTACK_* environment variable > --config-file > default. Options without a flag "
    "(GPUSTACK_HEARTBEAT_INTERVAL_SECONDS, GPUSTACK_HEARTBEAT_GRACE_SECONDS, GPUSTACK_RESCHEDULE_AFTER_SECONDS, "
    "GPUSTACK_SCHEDULER_SCAN_SECONDS, GPUSTACK_RESYNC_SECONDS, GPUSTACK_METRICS_AUTH, GPUSTACK_USAGE_METERING, "
    "GPUSTACK_USAGE_RETENTION_DAYS, GPUSTACK_USAGE_FLUSH_SECONDS, GPUSTACK_GPU_HISTORY_INTERVAL_SECONDS, "
    "GPUSTACK_GPU_HISTORY_RETENTION_DAYS) are set by environment or config file."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpustack", description="GPU cluster manager for serving AI models")
    parser.add_argument("--version", action="version", version=f"gpustack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server (with embedded worker) or a worker", epilog=_START_EPILOG)
    for flag, kwargs in _START_FLAGS:
        start.add_argument(flag, **_described(flag, kwargs))
    sub.add_parser("version", help="print the version")
    migrate = sub.add_parser("migrate", help="upgrade the database schema to the latest revision")
    reset = sub.add_parser("reset-admin-password", help="set a new password for a user (default admin)")
    for p in (migrate, reset):
        for flag, kwargs in _START_FLAGS:
            if flag in ("--config-file", "--data-dir", "--database-url"):
                p.add_argument(flag, **_described(flag, kwargs))
    reset.add_argument("--username", default="admin", help="(default: admin)")
    reset.add_argument("--password", help="new password (prompted when absent)")
    return parser


def load_config(args: argparse.Namespace) -> Config:
    given = {key: value for key, value in vars(args).items() if value is not None and key in Config.model_fields}
    return Config(**given)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"gpustack {__version__}")
        return 0
    try:
        config = load_config(args)
    except (ValidationError, ValueError) as exc:
        return _fail(f"invalid configuration: {exc}")
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.log_level != "debug":  # one line per heartbeat and per proxied request is noise
        logging.getLogger("httpx").setLevel(logging.WARNING)
    from gpustack.preflight import PreflightError, check_command

    try:
        check_command(args.command, config)
    except PreflightError as exc:
        return _fail(str(exc))
    if args.command == "migrate":
        return _migrate(config)
    if args.command == "reset-admin-password":
        return _reset_password(config, args.username, args.password)
    from gpustack.launcher import run

    try:
        asyncio.run(run(config))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    except ValueError as exc:
        return _fail(str(exc))
    return 0


def _migrate(config: Config) -> int:
    from gpustack.server.db import create_engine, create_private_sqlite_file
    from gpustack.server.migrate import run_migrations

    async def go() -> None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        create_private_sqlite_file(config.resolved_database_url())
        engine = create_engine(config.resolved_database_url())
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    print("database is at the latest revision")
    return 0


def _reset_password(config: Config, username: str, password: str | None) -> int:
    from gpustack.core.errors import InvalidError
    from gpustack.server.db import Database
    from gpustack.server.services.users import INITIAL_PASSWORD_FILE, reset_password

    password = password or getpass.getpass(f"new password for {username}: ")
    if len(password) < 6:
        return _fail("password must be at least 6 characters")

    async def go() -> None:
        db = Database(config.resolved_database_url())
        try:
            async with db.session() as session:
                await reset_password(session=session, username=username, password=password)
        finally:
            await db.dispose()

    try:
        asyncio.run(go())
    except InvalidError as exc:
        return _fail(exc.message)
    print(f"password of '{username}' updated")
    stale = config.data_dir / INITIAL_PASSWORD_FILE
    if username == "admin" and stale.exists():  # it no longer holds the admin's password
        stale.unlink()
        print(f"removed {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
