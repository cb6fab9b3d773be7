"""One instance's engine on this worker: resolve files, launch, health-check, monitor, restart."""

import asyncio
import logging

import httpx

from gpustack.core.tasks import TaskGroup
from gpustack.schemas.instances import InstanceState, ModelInstancePublic, ModelInstanceUpdate
from gpustack.schemas.models import ModelPublic
from gpustack.worker.backends import LaunchSpec, get_backend
from gpustack.worker.backoff import Backoff, monotonic
from gpustack.worker.catalog import apply_catalog, fetch_backend
from gpustack.worker.client import ServerClientError, ServerResponseError
from gpustack.worker.distributed.main import MainPart
from gpustack.worker.distributed.parts import PartFailure
from gpustack.worker.downloads import DownloadError, ResolvedModel
from gpustack.worker.engine_deps import EngineDeps, ServeOptions, launch_context
from gpustack.worker.failures import failure_excerpt
from gpustack.worker.logs import instance_log_path, rotate
from gpustack.worker.ports import NoFreePortError
from gpustack.worker.records import EngineRecord
from gpustack.worker.runtimes.base import Runtime, RuntimeStartError, get_runtime

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
__all__ = ["EngineDeps", "EngineFailure", "InstanceRunner", "ServeOptions", "launch_context"]  # deps re-exported


class EngineFailure(Exception):
    """A launch step failed or the engine died; the message becomes the instance's state_message."""


class InstanceRunner:
    """Owns the engine of one instance for as long as the instance is placed on this worker."""

    def __init__(self, instance: ModelInstancePublic, deps: EngineDeps, orphan: EngineRecord | None = None) -> None:
        self.instance_id = instance.id
        self.name = instance.name
        self.instance = instance  # the latest server view
        self.deps = deps
        self.phase = InstanceState.INITIALIZING
        self.port: int | None = None
        self.pid: int | None = None
        self.restart_count = instance.restart_count
        self.log_path = instance_log_path(deps.data_dir, instance.name)
        self._handle: str | None = None
        self._runtime: Runtime | None = None
        self._backoff = Backoff(deps.options.restart_base_seconds, deps.options.restart_max_seconds)
        self._running_since: float | None = None
        self._last: ModelInstanceUpdate | None = None
        self._last_at = 0.0
        self._tasks = TaskGroup()
        self._orphan = orphan  # an engine an earlier worker process started for this instance
        self._main: MainPart | None = None  # the distributed part when this worker is the instance's main

    def start(self) -> None:
        self._tasks.spawn(f"instance-{self.instance_id}", self._run)

    async def stop(self) -> None:
        """Cancel the lifecycle and stop the engine (graceful, then forced)."""
        await self._tasks.stop()
        await self._release()
        logger.info("stopped instance %s", self.name)

    def observe(self, instance: ModelInstancePublic) -> None:
        self.instance = instance

    async def _run(self) -> None:
        while True:
            try:
                if not await self._adopt():
                    await self._launch()
                await self._monitor()
            except EngineFailure as exc:
                message = str(exc)
            except Exception as exc:
                logger.exception("instance %s: unexpected error", self.name)
                message = f"unexpected worker error: {exc!r}"
            await self._release()
            await self._fail(message)

    async def _launch(self) -> None:
        self.phase = InstanceState.INITIALIZING
        await self._report(
            state=InstanceState.INITIALIZING,
            state_message=None,
            port=None,
            pid=None,
            download_progress=None,
            restart_count=self.restart_count,
        )
        model = await self._model()
        resolved = await self._resolve(model)
        self.port = self._allocate_port()
        self.phase = InstanceState.STARTING
        await self._report(state=InstanceState.STARTING, state_message=None, port=self.port)
        catalog = await fetch_backend(self.deps.client, model.backend.value)
        spec = await self._spec(model, resolved, self.port, catalog)
        await self._start_engine(spec)
        await self._wait_healthy(spec)
        self.phase = InstanceState.RUNNING
        self._running_since = monotonic()
        await self._report(state=InstanceState.RUNNING, state_message=None, port=self.port, pid=self.pid)
        logger.info("instance %s is running on port %s (pid %s)", self.name, self.port, self.pid)

    async def _adopt(self) -> bool:
        """Take over the engine an earlier worker process left running, when it is still healthy."""
        record, self._orphan = self._orphan, None
        if record is None:
            return False
        try:
            self._runtime = get_runtime(record.runtime)
        except KeyError:
            self._runtime = None
        if self._runtime is None or not await self._runtime.adopt(record.handle, record.identity, self.name):
            await asyncio.to_thread(self.deps.records.remove, self.instance_id)
            return False
        self._handle, self.port = record.handle, record.port
        self.pid = await self._runtime.main_pid(record.handle)
        self.deps.ports.reserve(record.port)
        if self.instance.distributed_servers:  # its Ray head / parts went with the earlier worker: start over
            await self._release()
            return False
        url = f"http://127.0.0.1:{record.port}{record.health_path}"
        for _ in range(3):
            if await self._healthy(url):
                break
            await asyncio.sleep(self.deps.options.health_poll_seconds)
        else:
            logger.info("instance %s: the engine left by an earlier worker is unhealthy; replacing it", self.name)
            await self._release()
            return False
        self.phase = InstanceState.RUNNING
        self._running_since = monotonic()
        await self._report(state=InstanceState.RUNNING, state_message=None, port=self.port, pid=self.pid)
        logger.info("instance %s: adopted its running engine (pid %s, port %s)", self.name, self.pid, self.port)
        return True

    async def _model(self) -> ModelPublic:
        try:
            return await self.deps.client.get_model(self.instance.model_id)
        except ServerClientError as exc:
            raise EngineFailure(f"cannot read model {self.instance.model_id}: {exc}") from exc

    async def _resolve(self, model: ModelPublic) -> ResolvedModel:
        async def progress(percent: float) -> None:
            self.phase = InstanceState.DOWNLOADING
            await self._report(state=InstanceState.DOWNLOADING, download_progress=round(percent, 2))

        try:
            resolved = await self.deps.resolver.resolve(model, progress)
        except DownloadError as exc:
            raise EngineFailure(str(exc)) from exc
        if self.phase == InstanceState.DOWNLOADING:
            await self._report(state=InstanceState.DOWNLOADING, download_progress=100.0)
        return resolved

    def _allocate_port(self) -> int:
        try:
            return self.deps.ports.allocate()
        except NoFreePortError as exc:
            raise EngineFailure(str(exc)) from exc

    async def _spec(self, model: ModelPublic, resolved: ResolvedModel, port: int, catalog: dict | None) -> LaunchSpec:
        ctx = launch_context(
            self.instance,
            model,
            model_path=str(resolved.path),
            port=port,
            gpu_vendor=self.deps.gpu_vendor(),
            work_dir=self.deps.data_dir / "instances" / self.log_path.stem,
        )
        deps = self.deps
        try:
            ctx = apply_catalog(
                ctx,
                catalog,
                docker=deps.runtime_name == "docker",
                registry=deps.image_registry,
                namespace=deps.image_namespace,
            )
            if self.instance.distributed_servers:  # the other workers' parts first, then this engine over them
                self._main = MainPart(get_runtime(deps.runtime_name), deps.ports, ctx.work_dir / "parts",
                                      lambda: self.instance, self._report_ports)  # fmt: skip
                return await self._main.prepare(model.backend.value, ctx)
            return get_backend(model.backend.value)(ctx)
        except PartFailure as exc:
            raise EngineFailure(f"distributed part: {exc}") from exc
        except (KeyError, ValueError, RuntimeError) as exc:
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise EngineFailure(f"backend '{model.backend.value}': {reason}") from exc

    async def _start_engine(self, spec: LaunchSpec) -> None:
        """Start the spec; a cancellation during a slow start still records the handle to stop."""
        name = "docker" if spec.image else self.deps.runtime_name
        try:
            self._runtime = get_runtime(name)
        except KeyError as exc:
            raise EngineFailure(str(exc.args[0])) from exc
        try:
            await self._runtime.prepare(spec, self._preparing)
        except RuntimeStartError as exc:
            raise EngineFailure(str(exc)) from exc
        start = asyncio.ensure_future(self._runtime.start(spec, self.log_path))
        try:
            handle = await asyncio.shield(start)
        except asyncio.CancelledError:
            await asyncio.wait({start})
            if not start.cancelled() and start.exception() is None:
                self._handle = start.result()
            raise
        except RuntimeStartError as exc:
            raise EngineFailure(str(exc)) from exc
        self._handle = handle
        self.pid = await self._runtime.main_pid(handle)
        record = EngineRecord(
            instance_id=self.instance_id,
            instance_name=self.name,
            runtime=self._runtime.name,
            handle=handle,
            identity=await self._runtime.identity(handle),
            port=spec.port,
            health_path=spec.health_path if spec.health_path.startswith("/") else "/" + spec.health_path,
        )
        await asyncio.to_thread(self.deps.records.save, record)

    async def _preparing(self, message: str, percent: float | None) -> None:
        """Shows an image pull on the instance: its message and percentage."""
        await self._report(state=InstanceState.STARTING, state_message=message, download_progress=percent)

    async def _exit_code(self) -> int | None:
        if self._runtime is None or self._handle is None:
            return -1
        try:
            return await self._runtime.exit_code(self._handle)
        except KeyError:
            return -1

    async def _exited(self, code: int, when: str) -> EngineFailure:
        n = self.deps.options.error_log_lines
        lines = await asyncio.to_thread(failure_excerpt, self.log_path, error_lines=n, tail_lines=n)
        return EngineFailure(f"engine exited with code {code} {when}; from its log:\n{lines}")

    async def _wait_healthy(self, spec: LaunchSpec) -> None:
        options = self.deps.options
        path = spec.health_path if spec.health_path.startswith("/") else "/" + spec.health_path
        url = f"http://127.0.0.1:{spec.port}{path}"
        deadline = monotonic() + options.health_timeout_seconds
        while True:
            code = await self._exit_code()
            if code is not None:
                raise await self._exited(code, "while starting")
            if await self._healthy(url):
                return
            if monotonic() >= deadline:
                raise EngineFailure(
                    f"engine did not answer GET {path} with 200 within {options.health_timeout_seconds:.0f}s"
                )
            await self._sleep(options.health_poll_seconds)

    async def _healthy(self, url: str) -> bool:
        try:
            response = await self.deps.health.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _monitor(self) -> None:
        options = self.deps.options
        while True:
            await self._sleep(options.monitor_seconds)
            code = await self._exit_code()
            if code is not None:
                raise await self._exited(code, "while running")
            if self._main is not None and (why := await self._main.check()):
                raise EngineFailure(f"distributed part: {why}")
            await asyncio.to_thread(rotate, self.log_path, options.log_max_bytes, options.log_backups)

    async def _report_ports(self, ports: list[int]) -> None:
        await self._report(ports=ports)

    async def _release(self) -> None:
        """Stop the engine if one runs (and the distributed part under it) and free its port."""
        if self._main is not None:
            main, self._main = self._main, None
            await main.stop()
        if self._handle is not None and self._runtime is not None:
            await self._runtime.stop(self._handle, timeout=self.deps.options.stop_timeout_seconds)
            await asyncio.to_thread(self.deps.records.remove, self.instance_id)
        self._handle = None
        self.pid = None
        self.deps.ports.release(self.port)
        self.port = None

    async def _fail(self, message: str) -> None:
        """Report the error, then wait out the backoff (reset after a long healthy run)."""
        ran = monotonic() - self._running_since if self._running_since is not None else 0.0
        if ran >= self.deps.options.healthy_reset_seconds:
            self._backoff.reset()
        self._running_since = None
        delay = self._backoff.next()
        self.restart_count += 1
        self.phase = InstanceState.ERROR
        logger.warning("instance %s failed (restart in %.1fs): %s", self.name, delay, message)
        text = f"{message}\n(restarting in {delay:.0f}s)"
        await self._report(
            state=InstanceState.ERROR,
            state_message=text[-MAX_MESSAGE_CHARS:],
            port=None,
            pid=None,
            restart_count=self.restart_count,
        )
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Sleep in short steps, re-sending the last report when the server's view disagrees."""
        deadline = monotonic() + seconds
        while (left := deadline - monotonic()) > 0:
            await asyncio.sleep(min(left, self.deps.options.monitor_seconds))
            await self._resend_if_stale()

    async def _resend_if_stale(self) -> None:
        last, seen = self._last, self.instance
        if last is None or monotonic() - self._last_at < self.deps.options.resend_seconds:
            return
        stale = seen.state != last.state
        if last.state == InstanceState.RUNNING:
            stale = stale or (seen.port, seen.pid) != (last.port, last.pid)
        if stale:
            logger.info("instance %s: server shows %s, re-reporting %s", self.name, seen.state, last.state)
            await self._send(last)

    async def _report(self, **fields: object) -> None:
        await self._send(ModelInstanceUpdate.model_validate(fields))

    async def _send(self, update: ModelInstanceUpdate) -> None:
        """PATCH the instance; failures are logged (a later re-send repairs the server's view)."""
        self._last, self._last_at = update, monotonic()
        try:
            self.instance = await self.deps.client.update_instance(self.instance_id, update)
        except ServerResponseError as exc:
            logger.warning("instance %s: report refused: %s", self.name, exc)
            if exc.status_code in (403, 404):
                self.deps.request_resync()
        except ServerClientError as exc:
            logger.warning("instance %s: report failed: %s", self.name, exc)
