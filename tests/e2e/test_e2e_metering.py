"""End to end: usage metering and both /metrics endpoints after real traffic through the llama.cpp engine."""

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")
TOKEN = "e2e-metrics-token-0123456789"
PROMPT = [{"role": "user", "content": "hello world"}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("e2e-metering")
    cluster = Cluster(root, env={"GPUSTACK_METRICS_TOKEN": TOKEN})
    try:
        cluster.start_server()
        cluster.start_worker("worker-m", 41200)
        model = write_tiny_gguf(root / "tiny.gguf")
        with cluster.admin() as admin:
            wait_for(lambda: admin.get("/v2/workers").json()["items"], 60, "the worker")
            created = admin.post("/v2/models", json={"name": "tiny", "local_path": str(model), "replicas": 1})
            assert created.status_code == 201, created.text
            wait_for(lambda: [i for i in admin.get("/v2/model-instances").json()["items"] if i["state"] == "running"],
                     180, "a running instance")  # fmt: skip
        yield cluster
    finally:
        cluster.shutdown()
        for proc in cluster.procs:
            print(f"---- {proc.name} log tail ----\n" + proc.log.read_text(errors="replace")[-3000:])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200, r.text
    return _samples(r.text)


def test_requests_are_metered_and_scraped(cluster: Cluster) -> None:
    with cluster.admin() as admin:
        key = admin.post("/v2/api-keys", json={"name": "metered"}).json()
        worker = admin.get("/v2/workers").json()["items"][0]
        inst = admin.get("/v2/model-instances").json()["items"][0]
    client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=key["value"], max_retries=0, timeout=60)
    same = {"model": "tiny", "messages": PROMPT, "max_tokens": 6, "temperature": 0, "seed": 11}
    plain = client.chat.completions.create(**same)
    assert plain.usage is not None
    chunks = list(client.chat.completions.create(**same, stream=True))
    assert all(c.usage is None for c in chunks)  # the client did not ask: no usage chunk reaches it
    asked = list(client.chat.completions.create(**same, stream=True, stream_options={"include_usage": True}))
    assert asked[-1].usage is not None and asked[-1].usage.model_dump(exclude_none=True) == plain.usage.model_dump(
        exclude_none=True
    )  # the engine's exact usage, as the plain answer has it

    def report() -> dict[str, Any] | None:
        with cluster.admin() as admin:
            r = admin.get("/v2/usage", params={"group_by": ["model", "api_key"]}).json()
        rows = [i for i in r["items"] if i["api_key_id"] == key["id"]]
        return rows[0] if rows and rows[0]["api_requests"] == 3 else None

    row = wait_for(report, 15, "three metered requests")
    assert row["model"] == "tiny" and row["api_key_name"] == "metered"
    # a streamed request is metered with the same token counts as the non-streamed one (the engine reports
    # them at the end of the stream: see gpustack/engines/llama_cpp_server.py)
    assert row["input_tokens"] == 3 * plain.usage.prompt_tokens
    assert row["output_tokens"] == 3 * plain.usage.completion_tokens
    assert row["total_tokens"] == 3 * plain.usage.total_tokens
    server = _scrape(f"{cluster.url}/metrics")
    labels = (("model", "tiny"), ("route", "/v1/chat/completions"), ("status", "200"))
    assert server[("gpustack_openai_requests_total", labels)] == 3
    assert server[("gpustack_completion_tokens_total", (("model", "tiny"),))] == row["output_tokens"]
    assert server[("gpustack_prompt_tokens_total", (("model", "tiny"),))] == row["input_tokens"]
    assert server[("gpustack_workers", (("state", "ready"),))] == 1

    worker_url = f"http://{worker['ip']}:{worker['port']}"
    on_worker = _scrape(f"{worker_url}/metrics")
    ident = (("instance", inst["name"]), ("instance_id", str(inst["id"])), ("worker", "worker-m"))
    assert on_worker[("gpustack_instance_state", (*ident[:2], ("state", "running"), ident[2]))] == 1
    assert on_worker[("gpustack_instance_memory_rss_bytes", ident)] > 0
    proxied = (("instance", inst["name"]), ("status", "200"))
    assert on_worker[("gpustack_worker_proxy_requests_total", proxied)] >= 3
    engine = httpx.get(f"{worker_url}/instances/{inst['id']}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert engine.status_code == 404 and "llama-cpp-python has none" in engine.json()["detail"]
