"""End to end: server + two workers as processes, a real llama.cpp engine, the official openai client."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("e2e")
    cluster = Cluster(root)
    try:
        cluster.start_server()
        cluster.start_worker("worker-a", 41000)
        cluster.start_worker("worker-b", 41100)
        with cluster.admin() as admin:
            wait_for(lambda: _ready_workers(admin) == {"worker-a", "worker-b"}, 60, "two ready workers")
        yield cluster
    finally:
        cluster.shutdown()
        for proc in cluster.procs:
            print(f"---- {proc.name} log tail ----\n" + proc.log.read_text(errors="replace")[-3000:])


def _ready_workers(admin) -> set[str]:  # type: ignore[no-untyped-def]
    items = admin.get("/v2/workers").json()["items"]
    return {w["name"] for w in items if w["state"] == "ready"}


def _instances(admin, model_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    return admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]


def _running(admin, model_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    return [i for i in _instances(admin, model_id) if i["state"] == "running"]


@pytest.fixture(scope="module")
def deployment(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict:
    model_path = write_tiny_gguf(tmp_path_factory.mktemp("model") / "tiny.gguf")
    with cluster.admin() as admin:
        created = admin.post(
            "/v2/models",
            json={"name": "tiny", "source": "local_path", "local_path": str(Path(model_path)), "replicas": 2},
        )
        assert created.status_code == 201, created.text
        model = created.json()
        running = wait_for(
            lambda: len(_running(admin, model["id"])) == 2 and _running(admin, model["id"]), 180, "two running replicas"
        )
        key = admin.post("/v2/api-keys", json={"name": "e2e"}).json()["value"]
    return {"model": model, "running": running, "key": key}


def _client(cluster: Cluster, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=key, max_retries=0, timeout=60)


def test_replicas_spread_across_workers(deployment: dict) -> None:
    workers = {i["worker_name"] for i in deployment["running"]}
    assert workers == {"worker-a", "worker-b"}
    assert all(i["port"] and i["pid"] for i in deployment["running"])


def test_openai_client_end_to_end(cluster: Cluster, deployment: dict) -> None:
    client = _client(cluster, deployment["key"])
    assert "tiny" in [m.id for m in client.models.list().data]
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and chat.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True
    )
    chunks = list(stream)
    assert len(chunks) >= 2, "streaming must arrive as several chunks"
    completion = client.completions.create(model="tiny", prompt="the world", max_tokens=6)
    assert completion.choices[0].text is not None and completion.usage.completion_tokens > 0  # type: ignore[union-attr]
    emb = client.embeddings.create(model="tiny", input=["hello world", "tiny model"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 64


def test_instance_logs_stream_from_the_worker(cluster: Cluster, deployment: dict) -> None:
    inst = deployment["running"][0]
    with cluster.admin() as admin:
        logs = admin.get(f"/v2/model-instances/{inst['id']}/logs", params={"tail": 50})
        assert logs.status_code == 200, logs.text
        assert "llama_cpp.server" in logs.text or "Uvicorn running" in logs.text
        assert len(logs.text.splitlines()) <= 50
        with admin.stream(
            "GET", f"/v2/model-instances/{inst['id']}/logs", params={"tail": 1, "follow": "true"}
        ) as live:
            assert live.status_code == 200
            first = next(live.iter_lines())
        assert first
        missing = admin.get("/v2/model-instances/999999/logs")
        assert missing.status_code == 404


def test_unknown_model_and_bad_key(cluster: Cluster, deployment: dict) -> None:
    client = _client(cluster, deployment["key"])
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        _client(cluster, "gpustack_bad_key").models.list()


def test_openai_surface_with_the_official_client(cluster: Cluster, deployment: dict) -> None:
    """models.retrieve, the stream usage chunk (the engine's exact counts, as the worker starts
    llama-cpp-python), the /v1-openai alias, and an OpenAI-shaped error for an endpoint the engine lacks."""
    client = _client(cluster, deployment["key"])
    assert client.models.retrieve("tiny").id == "tiny"
    same = {"model": "tiny", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 6,
            "temperature": 0, "seed": 3}  # fmt: skip
    chunks = list(client.chat.completions.create(**same, stream=True, stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices, chunks[-1]
    assert not usage.model_extra or "estimated" not in usage.model_extra  # the engine's own, not the gateway's
    assert usage == client.chat.completions.create(**same).usage  # the same counts as without streaming
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert sum(1 for c in chunks if c.usage) == 1
    plain = list(
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
    )
    assert not any(c.usage for c in plain), "no usage chunk unless asked for"
    alias = openai.OpenAI(base_url=f"{cluster.url}/v1-openai", api_key=deployment["key"], max_retries=0, timeout=60)
    assert [m.id for m in alias.models.list().data] == [m.id for m in client.models.list().data]
    # the tiny GGUF is a llama (with a pooling type): its categories, read from the file, exclude reranking
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/rerank", body={"model": "tiny", "query": "q", "documents": ["a"]}, cast_to=object)
    body = err.value.body
    assert body["code"] == "unsupported_model_category" and "/v1/rerank" in body["message"]  # type: ignore[index]
    assert client.embeddings.create(model="tiny", input="hello").data[0].embedding  # "embedding" is one of them


def test_requests_survive_a_worker_dying(cluster: Cluster, deployment: dict) -> None:
    """Kill worker-a and its engine: requests keep succeeding and its replica moves to worker-b."""
    model_id = deployment["model"]["id"]
    victim = next(i for i in deployment["running"] if i["worker_name"] == "worker-a")
    next(p for p in cluster.procs if p.name == "worker-a").kill()
    os.kill(victim["pid"], signal.SIGKILL)
    client = _client(cluster, deployment["key"])
    for _ in range(6):
        reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        assert reply.choices
    with cluster.admin() as admin:
        moved = wait_for(
            lambda: (
                [i for i in _running(admin, model_id) if i["worker_name"] == "worker-b"]
                if len([i for i in _running(admin, model_id) if i["worker_name"] == "worker-b"]) == 2
                else None
            ),
            180,
            "both replicas running on worker-b",
        )
        assert {i["worker_name"] for i in moved} == {"worker-b"}
        worker_a = admin.get("/v2/workers", params={"name": "worker-a"}).json()["items"][0]
        assert worker_a["state"] == "not_ready"
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert reply.choices
