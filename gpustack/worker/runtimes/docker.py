"""Runtime that starts engines as Docker containers through the docker SDK (host network)."""

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.types import DeviceRequest, Mount

from gpustack.worker.backends.base import LaunchSpec
from gpustack.worker.runtimes.base import PullProgress, Runtime, RuntimeStartError, write_launch_files
from gpustack.worker.runtimes.devices import container_device_env, container_devices

logger = logging.getLogger(__name__)

LABEL = "gpustack.instance"
_PING_TIMEOUT_S = 2
_API_TIMEOUT_S = 120
_ERRORS = (DockerException, requests.RequestException)


def container_name(name: str) -> str | None:
    """Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]*; instance names may hold '/' or ':' (from model names)."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]", "-", name).lstrip("_.-")
    return f"gpustack-{cleaned}" if cleaned else None


def container_options(spec: LaunchSpec) -> dict[str, Any]:
    """Keyword arguments for containers.run() built from a spec (pure; unit-testable without Docker)."""
    if not spec.image:
        raise RuntimeStartError(f"{spec.name or 'spec'}: the docker runtime needs spec.image")
    options: dict[str, Any] = {
        "image": spec.image,
        "detach": True,
        "network_mode": "host",
        "ipc_mode": "host",
        "environment": {**spec.env, **container_device_env(spec)},
        "labels": {LABEL: spec.name},
        "name": container_name(spec.name),
    }
    if spec.keep_entrypoint:
        options["command"] = list(spec.argv) or None
    elif spec.argv:  # argv is exactly what runs, as with the process runtime
        options["entrypoint"] = [spec.argv[0]]
        options["command"] = list(spec.argv[1:])
    if spec.gpu_indexes and spec.gpu_vendor == "nvidia":
        options["device_requests"] = [
            DeviceRequest(device_ids=[str(i) for i in spec.gpu_indexes], capabilities=[["gpu"]])
        ]
    devices, device_env, driver_mounts = container_devices(spec)
    if devices:
        options["devices"] = devices
        options["environment"].update(device_env)
    if mounts := (*spec.mounts, *driver_mounts):
        options["mounts"] = [Mount(target=p, source=p, type="bind", read_only=True) for p in mounts]
    return options


def pull_failure(image: str, exc: BaseException) -> str:
    """What to do when an image can be neither found nor pulled (offline workers load it from a file)."""
    return (
        f"image {image} is not on this worker and pulling it failed ({exc}). On a worker without registry "
        f"access, save it elsewhere with `docker save {image} -o image.tar`, copy the file over and run "
        f"`docker load -i image.tar`; or set the model's image_name to an image this worker has (`docker images`)."
    )


def _stream_logs(container: Any, log_path: Path) -> None:
    """Thread body: append the container's stdout/stderr to log_path until the container ends."""
    try:
        with open(log_path, "ab") as log:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                log.write(chunk)
                log.flush()
    except (OSError, *_ERRORS) as exc:
        logger.debug("log stream of container %s ended: %s", container.short_id, exc)


def _state_exit_code(attrs: dict[str, Any]) -> int | None:
    """None while created/running/restarting/paused, else State.ExitCode."""
    state = attrs.get("State") or {}
    if state.get("Status") in ("created", "running", "restarting", "paused") or state.get("Running"):
        return None
    return int(state.get("ExitCode", -1))


class DockerRuntime(Runtime):
    """Handles are full container ids; containers carry the label gpustack.instance=<spec.name>."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None
        self._log_client: Any = None
        self._lock = threading.Lock()

    def _api(self) -> Any:
        """The lazily created client (DOCKER_HOST etc. from the environment)."""
        with self._lock:
            if self._client is None:
                self._client = docker.from_env(timeout=_API_TIMEOUT_S)
            return self._client

    def _logs_api(self) -> Any:
        """A second client without a read timeout: log streams may stay silent for long."""
        with self._lock:
            if self._log_client is None:
                self._log_client = docker.from_env(timeout=None)
            return self._log_client

    def is_available(self) -> bool:
        """True when a Docker engine answers a ping; False fast (about 2s at most) otherwise."""
        try:
            client = docker.from_env(timeout=_PING_TIMEOUT_S)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except _ERRORS as exc:
            logger.debug("docker engine unavailable: %s", exc)
            return False

    def _run(self, spec: LaunchSpec, log_path: Path) -> str:
        options = container_options(spec)
        write_launch_files(spec)
        client = self._api()
        if options["name"]:
            self._remove_leftover(options["name"])
        container = self._create(client, options)
        try:
            container.start()
        except _ERRORS as exc:
            # a container that could not start stays in state "created": remove it, leave nothing behind
            self._remove_quietly(str(container.id), timeout=1)
            raise RuntimeStartError(f"container from {spec.image} could not start: {exc}") from exc
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- gpustack {stamp}: started container {container.short_id} from {spec.image}\n".encode())
        self._follow_logs(str(container.id), log_path)
        return str(container.id)

    def _create(self, client: Any, options: dict[str, Any]) -> Any:
        """Create the container, pulling its image first when this engine does not have it."""
        create = {k: v for k, v in options.items() if k != "detach"}
        try:
            return client.containers.create(**create)
        except ImageNotFound:
            self._pull(options["image"])
        except _ERRORS as exc:
            raise RuntimeStartError(f"cannot create a container from {options['image']}: {exc}") from exc
        try:
            return client.containers.create(**create)
        except _ERRORS as exc:
            raise RuntimeStartError(f"cannot create a container from {options['image']}: {exc}") from exc

    async def prepare(self, spec: LaunchSpec, progress: PullProgress) -> None:
        """Pull spec.image when this engine lacks it, reporting the bytes of its layers as a percentage."""
        if not spec.image or await asyncio.to_thread(self._has_image, spec.image):
            return
        loop = asyncio.get_running_loop()
        await progress(f"pulling image {spec.image}", 0.0)

        def report(percent: float) -> None:
            asyncio.run_coroutine_threadsafe(progress(f"pulling image {spec.image}", percent), loop)

        await asyncio.to_thread(self._pull_streamed, spec.image, report)

    def _has_image(self, image: str) -> bool:
        try:
            self._api().images.get(image)
            return True
        except ImageNotFound:
            return False
        except _ERRORS as exc:
            raise RuntimeStartError(f"docker engine error while looking for image {image}: {exc}") from exc

    def _pull_streamed(self, image: str, report: Callable[[float], None]) -> None:
        repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        layers: dict[str, tuple[int, int]] = {}
        last = -10.0
        try:
            for event in self._api().api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise RuntimeStartError(pull_failure(image, RuntimeError(event["error"])))
                detail = event.get("progressDetail") or {}
                if event.get("id") and detail.get("total"):
                    layers[event["id"]] = (int(detail.get("current", 0)), int(detail["total"]))
                done, total = sum(c for c, _ in layers.values()), sum(t for _, t in layers.values())
                if total and (percent := 100.0 * done / total) - last >= 5:
                    last = percent
                    report(round(percent, 1))
        except _ERRORS as exc:
            raise RuntimeStartError(pull_failure(image, exc)) from exc

    def _pull(self, image: str) -> None:
        """Pull `image`; the error names the image and how to load it on a worker without a registry."""
        logger.info("pulling image %s", image)
        try:
            self._api().images.pull(image)
        except _ERRORS as exc:
            raise RuntimeStartError(pull_failure(image, exc)) from exc

    def _follow_logs(self, container_id: str, log_path: Path) -> None:
        """Start the daemon thread that appends the container's output to log_path."""
        try:
            follower = self._logs_api().containers.get(container_id)
        except _ERRORS as exc:  # the container runs anyway; only its log file stays empty
            logger.warning("cannot follow logs of container %s: %s", container_id[:12], exc)
            return
        name = f"logs-{container_id[:12]}"
        threading.Thread(target=_stream_logs, args=(follower, log_path), name=name, daemon=True).start()

    def _remove_leftover(self, name: str) -> None:
        """Remove a container of a previous attempt with the same name, but only one gpustack started."""
        try:
            container = self._api().containers.get(name)
        except NotFound:
            return
        if LABEL not in (container.labels or {}):
            raise RuntimeStartError(f"a container named {name!r} exists and was not started by gpustack")
        self._remove_quietly(container.id, timeout=5)

    def _remove_quietly(self, ref: str, timeout: float = 10) -> None:
        try:
            container = self._api().containers.get(ref)
        except NotFound:
            return
        try:
            container.stop(timeout=int(timeout))
        except NotFound:
            return
        except _ERRORS as exc:
            logger.info("stopping container %s failed (%s); removing it by force", ref, exc)
        try:
            container.remove(force=True)
        except NotFound:
            return

    def _exit_code(self, handle: str) -> int | None:
        try:
            container = self._api().containers.get(handle)
        except NotFound:
            raise KeyError(f"unknown container handle {handle!r}") from None
        return _state_exit_code(container.attrs)

    def _list(self) -> dict[str, str]:
        containers = self._api().containers.list(all=True, filters={"label": LABEL})
        return {str(c.id): str(c.labels.get(LABEL, "")) for c in containers}

    async def start(self, spec: LaunchSpec, log_path: Path) -> str:
        try:
            return await asyncio.to_thread(self._run, spec, log_path)
        except _ERRORS as exc:
            raise RuntimeStartError(f"docker engine error: {exc}") from exc

    async def stop(self, handle: str, timeout: float = 10) -> None:
        await asyncio.to_thread(self._remove_quietly, handle, timeout)

    async def exit_code(self, handle: str) -> int | None:
        return await asyncio.to_thread(self._exit_code, handle)

    async def list_handles(self) -> dict[str, str]:
        return await asyncio.to_thread(self._list)

    async def main_pid(self, handle: str) -> int | None:
        """The container's main process as the host sees it (docker inspect State.Pid); None when gone."""
        try:
            container = await asyncio.to_thread(self._api().containers.get, handle)
        except _ERRORS:
            return None
        pid = (container.attrs.get("State") or {}).get("Pid") or 0
        return int(pid) if pid > 0 else None

    async def adopt(self, handle: str, identity: str, name: str) -> bool:
        """Containers outlive the worker: a running one we labelled is taken over as it is."""
        try:
            return await asyncio.to_thread(self._adopt, handle)
        except _ERRORS as exc:
            logger.warning("cannot inspect container %s: %s", handle[:12], exc)
            return False

    def _adopt(self, handle: str) -> bool:
        try:
            container = self._api().containers.get(handle)
        except NotFound:
            return False
        if LABEL not in (container.labels or {}) or _state_exit_code(container.attrs) is not None:
            return False
        logger.info("adopted container %s started by an earlier worker process", container.short_id)
        return True
