"""A model created without categories gets them from its own files when the server can read them."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.api_test_helpers import admin_client, unique
from tests.utils.server import RunningServer
from tests.utils.tiny_gguf import write_tiny_gguf


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _create(api: httpx.Client, **fields: object) -> dict[str, object]:
    created = api.post("/v2/models", json={"name": unique("cat"), "replicas": 0, **fields})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def test_categories_come_from_the_files(api: httpx.Client, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    assert _create(api, local_path=str(gguf))["categories"] == ["llm", "embedding"]
    reranker = tmp_path / "reranker"
    reranker.mkdir()
    (reranker / "config.json").write_text(json.dumps({"architectures": ["XLMRobertaForSequenceClassification"]}))
    assert _create(api, local_path=str(reranker), backend="vllm")["categories"] == ["reranker"]


def test_given_categories_win_and_unknown_files_give_none(api: httpx.Client, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    assert _create(api, local_path=str(gguf), categories=["embedding"])["categories"] == ["embedding"]
    assert _create(api, local_path=str(tmp_path / "absent.gguf"))["categories"] == []
