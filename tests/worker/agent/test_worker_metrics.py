"""The worker's /metrics after real traffic: GPUs, engine processes, proxy counters, engines' own metrics."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_harness import Cluster, cluster, wait_for
from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "worker-metrics-token-123"
INVENTORY = (
    "- {name: Sim A100, memory_total: 80GiB, memory_used: 10GiB, core_utilization: 37.5, temperature: 61,\n"
    "   power_watts: 212.5, power_limit_watts: 400}\n"
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("worker-metrics")
    inventory = tmp / "gpus.yaml"
    inventory.write_text(INVENTORY)
    with cluster(tmp, gpu_inventory=inventory, metrics_token=METRICS_TOKEN) as running:
        wait_for(lambda: _answers(running), 20, "the worker proxy to listen")
        yield running


def _answers(env: Cluster) -> bool:
    try:
        with env.proxy() as client:
            return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def running(env: Cluster) -> dict[str, Any]:
    model = env.create_model()
    inst = env.wait_state(env.place_instance(model), "running")
    return {"model": model, **inst}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(env: Cluster, path: str = "/metrics") -> httpx.Response:
    with env.proxy() as client:
        return client.get(path, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})


def test_worker_metrics_need_the_token_or_the_proxy_credential(env: Cluster) -> None:
    with env.proxy() as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers=env.auth()).status_code == 200
    assert _scrape(env).status_code == 200


def test_gpu_process_and_proxy_metrics(env: Cluster, running: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "a b"}]}
    with env.proxy() as client:
        for _ in range(2):
            r = client.post(f"/proxy/{running['id']}/v1/chat/completions", json=body, headers=env.auth())
            assert r.status_code == 200
    worker, name, iid = env.agent.name, running["name"], str(running["id"])
    gpu = (("gpu", "0"), ("name", "Sim A100"), ("worker", worker))
    samples = wait_for(lambda: (s := _samples(_scrape(env).text)).get(("gpustack_gpu_memory_total_bytes", gpu)) and s)
    assert samples[("gpustack_gpu_memory_total_bytes", gpu)] == 80 * 2**30
    assert samples[("gpustack_gpu_memory_used_bytes", gpu)] == 10 * 2**30
    assert samples[("gpustack_gpu_utilization_percent", gpu)] == 37.5
    assert samples[("gpustack_gpu_temperature_celsius", gpu)] == 61
    assert samples[("gpustack_gpu_power_watts", gpu)] == 212.5
    assert samples[("gpustack_gpu_power_limit_watts", gpu)] == 400
    inst = (("instance", name), ("instance_id", iid), ("worker", worker))
    assert samples[("gpustack_instance_state", (*inst[:2], ("state", "running"), inst[2]))] == 1
    assert samples[("gpustack_instance_restarts_total", inst)] == 0
    assert samples[("gpustack_instance_memory_rss_bytes", inst)] > 1 << 20  # a live Python process
    assert samples[("gpustack_instance_cpu_seconds_total", inst)] > 0
    assert samples[("gpustack_worker_proxy_requests_total", (("instance", name), ("status", "200")))] == 2
    assert samples[("gpustack_worker_proxy_request_duration_seconds_count", (("instance", name),))] == 2


def test_engine_metrics_come_with_instance_labels(env: Cluster, running: dict[str, Any]) -> None:
    labels = (("gpustack_instance", running["name"]), ("gpustack_instance_id", str(running["id"])),
              ("gpustack_worker", env.agent.name))  # fmt: skip
    one = _scrape(env, f"/instances/{running['id']}/metrics")
    assert one.status_code == 200
    samples = _samples(one.text)
    assert (
        samples[("vllm:num_requests_running", tuple(sorted((*labels, ("model_name", running["model"]["name"])))))] == 1
    )
    assert samples[("vllm:prompt_tokens_total", labels)] == 42
    every = _samples(_scrape(env, "/metrics/engines").text)
    assert every[("vllm:prompt_tokens_total", labels)] == 42
    assert _scrape(env, "/instances/999999/metrics").status_code == 404


def test_relabel_merges_families_of_several_engines() -> None:
    from gpustack.worker.metrics import merge_families, relabel

    text = '# HELP x X.\n# TYPE x counter\nx_total{a="1"} 3\nx_total 4\n'
    merged = merge_families([relabel(text, {"i": "one"}), relabel(text, {"i": "two"})])
    assert merged.count("# TYPE x counter") == 1
    samples = _samples(merged)
    assert samples[("x_total", (("a", "1"), ("i", "two")))] == 3 and samples[("x_total", (("i", "one"),))] == 4


def test_the_grafana_dashboard_queries_only_metrics_the_worker_exports(env: Cluster, running: dict[str, Any]) -> None:
    from tests.utils.dashboard import dashboard_metric_names, exported_by_worker

    names = {n for n in dashboard_metric_names() if exported_by_worker(n)}
    assert len(names) >= 8
    body = {"messages": [{"role": "user", "content": "x"}]}
    with env.proxy() as client:
        client.post(f"/proxy/{running['id']}/v1/chat/completions", json=body, headers=env.auth())
    exported = {name for name, _ in _samples(_scrape(env).text)}
    assert names - exported == set()
