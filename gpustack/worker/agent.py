"""The worker agent: registers, reports status, and owns the serve loop and the proxy server."""

import asyncio
import contextlib
import ipaddress
import logging
import platform
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import uvicorn

from gpustack.config import Config
from gpustack.core.sizes import parse_size
from gpustack.core.tasks import TaskGroup
from gpustack.schemas.workers import BackendInfo, WorkerRegister, WorkerStatus, WorkerStatusReport
from gpustack.worker.backoff import Backoff
from gpustack.worker.client import ServerClient, ServerClientError, is_retryable
from gpustack.worker.detect import collect_status
from gpustack.worker.detect.engines import probe_backends, warn_cpu_only
from gpustack.worker.engine import ServeOptions
from gpustack.worker.metrics import WorkerMetrics
from gpustack.worker.proxy import create_proxy_app
from gpustack.worker.serve import ServeLoop

logger = logging.getLogger(__name__)

LOOPBACK_IP = "127.0.0.1"


def interface_of(ip: str) -> str:
    """The name of the network interface that holds `ip` (GPUStack's worker `ifname`), "" when none does."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address.split("%", 1)[0] == ip for a in addresses):
            return name[:255]
    return ""


def detect_worker_ip(server_url: str) -> str:
    """The local address used to reach the server host (UDP connect sends nothing); loopback stays local."""
    parts = urlsplit(server_url)
    host = parts.hostname or LOOPBACK_IP
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        if ipaddress.ip_address(address[0]).is_loopback:
            return LOOPBACK_IP
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            return str(sock.getsockname()[0])
    except (OSError, ValueError) as exc:
        logger.warning("cannot find the address that reaches %s (%s); using %s", host, exc, LOOPBACK_IP)
        return LOOPBACK_IP


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for the proxy; ValueError with a clear message when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every small response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"the worker port {host}:{port} is not available: {exc}") from exc
    return sock


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the process's signals belong to the launcher."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WorkerAgent:
    """`run()` registers (retrying until the server answers), then runs every worker loop until cancelled."""

    def __init__(self, config: Config, server_url: str, options: ServeOptions | None = None) -> None:
        if not config.token:
            raise ValueError("a worker needs the cluster token (--token)")
        self.config = config
        self.server_url = server_url.rstrip("/")
        self.name = config.worker_name or socket.gethostname()
        self.ip = config.worker_ip or ""
        self.client = ServerClient(
            self.server_url, config.token, self._registration, secret_path=config.data_dir / "worker_secret"
        )
        self.serve = ServeLoop(config, self.client, self.name, options)
        self.metrics = WorkerMetrics(self.name, self.serve.runners)
        self._tasks = TaskGroup()
        self._socket: socket.socket | None = None
        self._stopped = asyncio.Event()
        self._backends: dict[str, BackendInfo] | None = None  # probed once, at the first status

    def stop(self) -> None:
        """Ask run() to return (call from the agent's event loop)."""
        self._stopped.set()

    async def run(self) -> None:
        self._socket = bind_socket(self.config.host or "0.0.0.0", self.config.worker_port)
        try:
            if not self.ip:
                self.ip = await asyncio.to_thread(detect_worker_ip, self.server_url)
            await self._register()
            self._tasks.spawn("worker-heartbeat", self._heartbeat_loop)
            self._tasks.spawn("worker-watch", self.serve.watch_loop)
            self._tasks.spawn("worker-resync", self.serve.resync_loop)
            self._tasks.spawn("worker-reconcile", self.serve.reconcile_loop)
            self._tasks.spawn("worker-proxy", self._serve_proxy)
            await self._stopped.wait()
        finally:
            await self._tasks.stop()
            await self.serve.shutdown()
            await self.client.aclose()
            if self._socket is not None:
                self._socket.close()
            logger.info("worker '%s' stopped", self.name)

    async def _status(self) -> WorkerStatus:
        status = await asyncio.to_thread(collect_status, self.config.gpu_inventory, self.config.data_dir)
        if status.gpu_devices:
            self.serve.gpu_vendor = status.gpu_devices[0].vendor
        if self._backends is None:
            self._backends = await asyncio.to_thread(probe_backends)
            if status.gpu_devices and not status.simulated_gpus:
                warn_cpu_only(self._backends)
        self.metrics.status = status
        return status.model_copy(
            update={
                "gpu_runtime_overhead": parse_size(self.config.gpu_runtime_overhead),
                "gpu_headroom": parse_size(self.config.gpu_headroom),
                "backends": self._backends,
            }
        )

    async def _registration(self) -> WorkerRegister:
        labels = {"os": platform.system().lower(), "arch": platform.machine().lower()}
        return WorkerRegister(
            name=self.name,
            hostname=socket.gethostname()[:255],
            ifname=interface_of(self.ip),
            labels=labels,
            ip=self.ip,
            port=self.config.worker_port,
            status=await self._status(),
        )

    async def _register(self) -> None:
        """Register, retrying with backoff while the server is unreachable or starting."""
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                await self.client.register()
                return
            except ServerClientError as exc:
                if not is_retryable(exc):
                    raise ValueError(f"the server at {self.server_url} refused registration: {exc}") from exc
                delay = backoff.next()
                logger.info("server not ready (%s); registering again in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_seconds)
            try:
                status = await self._status()
                report = WorkerStatusReport(status=status, ip=self.ip, port=self.config.worker_port)
                await self.client.report_status(report)
            except (ServerClientError, OSError, ValueError) as exc:
                logger.warning("heartbeat failed: %s", exc)

    async def _serve_proxy(self) -> None:
        """uvicorn on the worker port as a task (a fresh socket after a crash-restart)."""
        sock, self._socket = self._socket, None
        if sock is None:
            sock = bind_socket(self.config.host or "0.0.0.0", self.config.worker_port)
        app = create_proxy_app(
            self.serve.runner,
            lambda: self.client.proxy_credential,
            self.metrics,
            metrics_token=self.config.metrics_token,
            metrics_auth=self.config.metrics_auth,
        )
        server = _EmbeddedServer(
            uvicorn.Config(
                app, log_config=None, access_log=False, timeout_graceful_shutdown=2, log_level=self.config.log_level
            )
        )
        logger.info("worker proxy listening on %s:%d", self.config.host or "0.0.0.0", self.config.worker_port)
        try:
            await server.serve(sockets=[sock])
        except asyncio.CancelledError:
            if server.started:
                server.should_exit = True
                await server.shutdown(sockets=[sock])
            raise
        finally:
            sock.close()
