"""Model files for an instance: local paths, Hugging Face and ModelScope downloads, with progress."""

import asyncio
import fnmatch
import importlib.util
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from gpustack.schemas.model_files import ModelFileReport, ModelFileState
from gpustack.schemas.models import ModelPublic, SourceEnum, source_key
from gpustack.worker.client import ServerClient, ServerClientError

logger = logging.getLogger(__name__)

T = TypeVar("T")
PROGRESS_SECONDS = 1.0
_GLOB = set("*?[")
_PROBE_TIMEOUT_S = 5.0

ProgressCallback = Callable[[float], Awaitable[None]]


class DownloadError(RuntimeError):
    """The model's files could not be found or downloaded; the message is shown to users."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # a file, or a directory for whole-repository sources
    source_key: str
    size: int | None


class Progress:
    """Percent done (0-100), written by a download thread and read by the event loop."""

    def __init__(self) -> None:
        self.percent = 0.0

    def update(self, percent: float) -> None:
        self.percent = max(0.0, min(100.0, percent))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size  # follows hub cache symlinks
            except OSError:
                continue
    return total


def _in_daemon_thread(fn: Callable[[], T]) -> "asyncio.Future[T]":
    """Run a blocking download in a daemon thread (an unfinished download never blocks exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (fn(), None)
        except BaseException as exc:  # handed to the awaiting coroutine, never lost
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop closed while the download ran (worker shut down)
            logger.debug("model download finished after the worker stopped")

    # an abandoned download (instance stopped meanwhile) must not log "exception never retrieved"
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    threading.Thread(target=body, name="model-download", daemon=True).start()
    return future


class _NullFile:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _tqdm_class(progress: Progress) -> Any:
    """A tqdm class that reports into `progress` instead of drawing a bar."""
    from tqdm.auto import tqdm

    class Tracked(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = _NullFile()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self.total:
                progress.update(100.0 * self.n / self.total)
            return shown  # type: ignore[no-any-return]

    return Tracked


def _hub_reachable(endpoint: str) -> bool:
    """One quick request: huggingface_hub itself retries an unreachable hub for about half a minute."""
    try:
        httpx.head(endpoint, timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return True


def _hf_download(model: ModelPublic, cache_dir: Path, progress: Progress) -> Path:
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download

    repo = model.huggingface_repo_id or ""
    pattern = model.huggingface_filename
    tqdm_class = _tqdm_class(progress)
    # an unreachable hub: serve from the cache at once, or fail at once with what to do
    cached_only = constants.HF_HUB_OFFLINE or not _hub_reachable(constants.ENDPOINT)
    options: dict[str, Any] = {"cache_dir": cache_dir, "tqdm_class": tqdm_class, "local_files_only": cached_only}
    if not pattern:
        return Path(snapshot_download(repo, **options))
    names = [pattern]
    if _GLOB & set(pattern):
        if cached_only:  # listing the repository needs the hub
            raise ConnectionError(f"cannot list the files of '{repo}' matching '{pattern}' without the hub")
        names = sorted(f for f in HfApi().list_repo_files(repo) if fnmatch.fnmatch(f, pattern))
        if not names:
            raise DownloadError(f"no file of huggingface repo '{repo}' matches '{pattern}'")
    paths = [hf_hub_download(repo, name, **options) for name in names]
    return Path(str(paths[0]))  # split GGUF files: engines open the first part


def _model_scope_download(model: ModelPublic, cache_dir: Path) -> Path:
    if importlib.util.find_spec("modelscope") is None:
        raise DownloadError("source 'model_scope' needs the modelscope package on this worker (pip install modelscope)")
    from modelscope.hub.file_download import model_file_download
    from modelscope.hub.snapshot_download import snapshot_download

    model_id = model.model_scope_model_id or ""
    pattern = model.model_scope_file_path
    if pattern and not _GLOB & set(pattern):
        return Path(model_file_download(model_id, pattern, cache_dir=str(cache_dir)))
    if not pattern:
        return Path(snapshot_download(model_id, cache_dir=str(cache_dir)))
    root = Path(snapshot_download(model_id, cache_dir=str(cache_dir), allow_patterns=[pattern]))
    found = sorted(p for p in root.rglob("*") if fnmatch.fnmatch(str(p.relative_to(root)), pattern))
    if not found:
        raise DownloadError(f"no file of modelscope model '{model_id}' matches '{pattern}'")
    return found[0]


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Errors a hub download raises for a bad repo, auth, network or disk (shown to the user)."""
    errors: list[type[BaseException]] = [OSError, ValueError, httpx.HTTPError]
    try:
        from huggingface_hub.errors import HfHubHTTPError

        errors.append(HfHubHTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _network_failure(exc: BaseException) -> bool:
    """True when the hub could not be reached at all (offline, DNS, refused, timed out, offline mode)."""
    seen: BaseException | None = exc
    while seen is not None:
        kind = type(seen).__name__
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError) or kind in _OFFLINE_ERRORS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# huggingface_hub's "not reachable and not in the cache" errors, by name (they moved between versions).
_OFFLINE_ERRORS = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectTimeout"}


def _next_step(model: ModelPublic, exc: BaseException) -> str:
    """What the user can do about a failed hub download (empty when the error says it already)."""
    if not _network_failure(exc):
        return ""
    if model.source == SourceEnum.HUGGING_FACE:
        from huggingface_hub import constants

        return (
            f". The worker cannot reach {constants.ENDPOINT}: set HF_ENDPOINT to a reachable mirror in the "
            "worker's environment (and restart it), or download the files on the worker and deploy them with "
            "source local_path"
        )
    return (
        ". The worker cannot reach ModelScope: set MODELSCOPE_DOMAIN to a reachable mirror in the worker's "
        "environment, or download the files on the worker and deploy them with source local_path"
    )


class ModelResolver:
    """Finds or downloads a model's files on this worker and reports them as ModelFiles."""

    def __init__(self, client: ServerClient, cache_dir: Path, worker_name: str) -> None:
        self.client = client
        self.cache_dir = cache_dir
        self.worker_name = worker_name

    async def resolve(self, model: ModelPublic, on_progress: ProgressCallback) -> ResolvedModel:
        """The local file or directory to hand to the engine; DownloadError with a clear message."""
        key = source_key(model)
        if model.source == SourceEnum.LOCAL_PATH:
            return await self._local(model, key)
        await self._report(model, key, ModelFileState.DOWNLOADING)
        try:
            path = await self._download(model, on_progress)
        except DownloadError as exc:
            await self._report(model, key, ModelFileState.ERROR, message=str(exc))
            raise
        except _hub_errors() as exc:
            message = f"downloading {model.source.value} model '{key}' failed: {exc}{_next_step(model, exc)}"
            await self._report(model, key, ModelFileState.ERROR, message=message)
            raise DownloadError(message) from exc
        resolved = ResolvedModel(path=path, source_key=key, size=await asyncio.to_thread(_size, path))
        await self._report(model, key, ModelFileState.READY, resolved=resolved)
        return resolved

    async def _local(self, model: ModelPublic, key: str) -> ResolvedModel:
        path = Path(key).expanduser()
        if not await asyncio.to_thread(path.exists):
            message = f"local_path '{key}' does not exist on worker '{self.worker_name}'"
            await self._report(model, key, ModelFileState.ERROR, message=message)
            raise DownloadError(message)
        resolved = ResolvedModel(path=path, source_key=key, size=await asyncio.to_thread(_size, path))
        await self._report(model, key, ModelFileState.READY, resolved=resolved)
        return resolved

    async def _download(self, model: ModelPublic, on_progress: ProgressCallback) -> Path:
        progress = Progress()
        if model.source == SourceEnum.HUGGING_FACE:
            cache = self.cache_dir / "huggingface"
            future = _in_daemon_thread(lambda: _hf_download(model, cache, progress))
        else:
            cache = self.cache_dir / "model_scope"
            future = _in_daemon_thread(lambda: _model_scope_download(model, cache))
        reported = -1.0
        while not future.done():
            await asyncio.wait({future}, timeout=PROGRESS_SECONDS)
            if progress.percent != reported and not future.done():
                reported = progress.percent
                await on_progress(reported)
        return future.result()

    async def _report(
        self,
        model: ModelPublic,
        key: str,
        state: ModelFileState,
        message: str | None = None,
        resolved: ResolvedModel | None = None,
    ) -> None:
        report = ModelFileReport(
            source=model.source,
            source_key=key,
            resolved_path=str(resolved.path) if resolved else None,
            size=resolved.size if resolved else None,
            state=state,
            state_message=message,
            download_progress=100.0 if state == ModelFileState.READY else 0.0,
        )
        try:
            await self.client.report_model_file(report)
        except ServerClientError as exc:
            logger.warning("could not report model file %s: %s", key, exc)
