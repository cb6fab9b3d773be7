"""Model file resolution: local paths, the Hugging Face cache, clear errors, ModelFile reports."""

import importlib.util
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gpustack.schemas.models import ModelPublic
from gpustack.schemas.workers import WorkerRegister
from gpustack.worker.client import ServerClient
from gpustack.worker.downloads import (
    DownloadError,
    ModelResolver,
    Progress,
    _hf_download,
    _tqdm_class,
    source_key,
)
from tests.utils.server import RunningServer, free_port, run_server

REPO = "test-org/tiny-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model(**fields: Any) -> ModelPublic:
    base: dict[str, Any] = {"id": 1, "name": "m", "state": "pending", "ready_replicas": 0}
    base.update(created_at=datetime(2024, 1, 1), updated_at=datetime(2024, 1, 1), **fields)
    return ModelPublic.model_validate(base)


def _hf_cache(cache: Path, filename: str, content: bytes) -> Path:
    """The layout huggingface_hub keeps: refs/main → a commit whose snapshot holds the file."""
    repo_dir = cache / "huggingface" / f"models--{REPO.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    target = repo_dir / "snapshots" / COMMIT / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return target


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("downloads")
    with run_server(tmp / "data", f"sqlite:///{tmp / 'db.sqlite'}") as running:
        yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[ServerClient]:
    async def payload() -> WorkerRegister:
        return WorkerRegister(name=f"d-{secrets.token_hex(3)}")

    client = ServerClient(server.url, server.token, payload)
    await client.register()
    yield client
    await client.aclose()


async def _no_progress(_percent: float) -> None:
    pass


def test_source_keys() -> None:
    hf = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="a.gguf")
    assert source_key(hf) == f"{REPO}/a.gguf"
    assert source_key(_model(source="huggingface", huggingface_repo_id=REPO)) == REPO
    assert source_key(_model(source="local_path", local_path="/models/x")) == "/models/x"


def test_hf_download_resolves_from_the_cache(tmp_path: Path, offline: None) -> None:
    target = _hf_cache(tmp_path, "model-q4.gguf", b"GGUF")
    model = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="model-q4.gguf")
    path = _hf_download(model, tmp_path / "huggingface", Progress())
    assert path.read_bytes() == b"GGUF" and path.resolve() == target.resolve()


async def test_resolver_reports_local_files(client: ServerClient, server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x" * 10)
    resolver = ModelResolver(client, tmp_path / "cache", "w1")
    resolved = await resolver.resolve(_model(source="local_path", local_path=str(tmp_path)), _no_progress)
    assert resolved.path == tmp_path and resolved.size == 10
    with pytest.raises(DownloadError, match="local_path '/nope/model.gguf' does not exist on worker 'w1'"):
        await resolver.resolve(_model(source="local_path", local_path="/nope/model.gguf"), _no_progress)
    with server.admin() as admin:
        files = admin.get("/v2/model-files", params={"worker_id": client.worker_id}).json()["items"]
    states = {f["source_key"]: (f["state"], f["size"]) for f in files}
    assert states == {str(tmp_path): ("ready", 10), "/nope/model.gguf": ("error", None)}


async def test_resolver_downloads_from_hf(client: ServerClient, tmp_path: Path, offline: None) -> None:
    _hf_cache(tmp_path / "cache", "m.gguf", b"12345")
    resolver = ModelResolver(client, tmp_path / "cache", "w1")
    model = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="m.gguf")
    resolved = await resolver.resolve(model, _no_progress)
    assert resolved.size == 5 and resolved.source_key == f"{REPO}/m.gguf"
    missing = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="other.gguf")
    with pytest.raises(DownloadError, match=f"downloading huggingface model '{REPO}/other.gguf' failed"):
        await resolver.resolve(missing, _no_progress)


@pytest.mark.skipif(importlib.util.find_spec("modelscope") is not None, reason="modelscope is installed")
async def test_model_scope_without_package_is_a_clear_error(client: ServerClient, tmp_path: Path) -> None:
    resolver = ModelResolver(client, tmp_path, "w1")
    model = _model(source="model_scope", model_scope_model_id="qwen/Qwen2-0.5B")
    with pytest.raises(DownloadError, match="needs the modelscope package"):
        await resolver.resolve(model, _no_progress)


def test_progress_bar_class_reports_percent() -> None:
    progress = Progress()
    bar = _tqdm_class(progress)(total=200, unit="B", disable=True)
    bar.update(50)
    assert progress.percent == 25.0
    bar.update(150)
    assert progress.percent == 100.0
    bar.close()


async def test_unreachable_hub_says_what_to_do(
    client: ServerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker without internet: the error names the endpoint and the next step, not a bare ConnectError."""
    from huggingface_hub import constants

    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", closed + "/{repo_id}/resolve/{revision}/{filename}")
    resolver = ModelResolver(client, tmp_path / "cache", "w1")
    model = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="m.gguf")
    with pytest.raises(DownloadError) as err:
        await resolver.resolve(model, _no_progress)
    message = str(err.value)
    assert f"cannot reach {closed}" in message
    assert "HF_ENDPOINT" in message and "local_path" in message
    glob = _model(source="huggingface", huggingface_repo_id=REPO, huggingface_filename="*.gguf")
    with pytest.raises(DownloadError, match="HF_ENDPOINT"):
        await resolver.resolve(glob, _no_progress)
    # files already in the cache are still served while the hub is unreachable
    _hf_cache(tmp_path / "cache", "m.gguf", b"123")
    assert (await resolver.resolve(model, _no_progress)).size == 3
