"""Metering through a real server: /metrics after real traffic, usage rows, streams, visibility, shutdown."""

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpustack.gateway.wiring import start_gateway
from gpustack.server.wiring import start_observers
from tests.utils.openai_engine import PROMPT_TOKENS, WORDS, UsageEngine, route_model
from tests.utils.server import RunningServer, run_server

CHAT = "/v1/chat/completions"
METRICS_TOKEN = "metrics-token-0123456789"
TOTAL = PROMPT_TOKENS + len(WORDS)


def scrape(server: RunningServer, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}, parsed as Prometheus parses it."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    r = httpx.get(f"{server.url}/metrics", headers=headers, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_until(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settled(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape taken once the writer has handled every request answered so far (request counters are
    updated by the writer, with the batch)."""

    def check() -> dict[Any, float] | None:
        now = scrape(server)
        requests = sum(v for (name, _), v in now.items() if name == "gpustack_openai_requests_total")
        idle = now[("gpustack_openai_requests_in_flight", ())] == 0 and now[("gpustack_usage_queue_length", ())] == 0
        return now if idle and now.get(("gpustack_usage_records_written_total", ()), 0) >= requests else None

    return dict(wait_until(check, "the usage writer to catch up"))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, UsageEngine, str, str]]:
    tmp: Path = tmp_path_factory.mktemp("metering")
    db_url = f"sqlite:///{tmp / 'm.db'}"
    hooks = [start_observers, start_gateway]
    with (
        run_server(
            tmp / "data", db_url, hooks=hooks, metrics_token=METRICS_TOKEN, gpu_history_interval_seconds=0.3
        ) as server,
        UsageEngine() as engine,
    ):
        route_model(server, db_url, engine, "metered")
        key = server.admin().post("/v2/api-keys", json={"name": "meter"}).json()["value"]
        wait_until(lambda: _chat(server, key).status_code == 200, "the model to be routable")
        yield server, engine, db_url, key


def _chat(server: RunningServer, key: str, **extra: Any) -> httpx.Response:
    body = {"model": "metered", "messages": [{"role": "user", "content": "hello"}], **extra}
    return httpx.post(f"{server.url}{CHAT}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _usage(server: RunningServer, auth: Any, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v2/usage", params=params, auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_metrics_needs_admin_or_the_metrics_token(rig: Any) -> None:
    server = rig[0]
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    server.admin().post("/v2/users", json={"username": "plain-user", "password": "plain-password"})
    plain = httpx.get(f"{server.url}/metrics", auth=("plain-user", "plain-password"))
    assert plain.status_code == 403 and "metrics token" in plain.json()["message"]
    admin = server.admin().get("/metrics")
    assert admin.status_code == 200 and "gpustack_openai_requests_total" in admin.text


def test_streams_are_metered_like_plain_requests_and_hide_the_added_usage(rig: Any) -> None:
    server, engine, _, key = rig
    before = settled(server)
    plain = _chat(server, key)
    assert plain.json()["usage"]["total_tokens"] == TOTAL
    engine.bodies.clear()
    streamed = _chat(server, key, stream=True)
    assert streamed.status_code == 200
    assert engine.bodies[-1]["stream_options"] == {"include_usage": True}  # asked for on the client's behalf
    assert '"usage"' not in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")
    asked = _chat(server, key, stream=True, stream_options={"include_usage": True})
    assert f'"total_tokens": {TOTAL}' in asked.text  # the client that asked still gets it

    after = settled(server)
    model = (("model", "metered"),)
    assert (
        after[("gpustack_prompt_tokens_total", model)] - before.get(("gpustack_prompt_tokens_total", model), 0)
        == 3 * PROMPT_TOKENS
    )
    completion = after[("gpustack_completion_tokens_total", model)] - before.get(
        ("gpustack_completion_tokens_total", model), 0
    )
    assert completion == 3 * len(WORDS)
    ok = ("gpustack_openai_requests_total", (("model", "metered"), ("route", CHAT), ("status", "200")))
    assert after[ok] - before.get(ok, 0) == 3
    ttft = ("gpustack_openai_time_to_first_token_seconds_count", (("model", "metered"), ("route", CHAT)))
    assert after[ttft] - before.get(ttft, 0) == 3
    assert after[("gpustack_openai_requests_in_flight", ())] == 0


def test_metrics_report_cluster_state(rig: Any) -> None:
    server = rig[0]
    running = ("gpustack_model_instances", (("state", "running"),))
    samples = wait_until(lambda: s if (s := scrape(server)).get(running) else None, "the state gauges")
    assert samples[("gpustack_model_instances", (("state", "running"),))] >= 1
    assert samples[("gpustack_workers", (("state", "ready"),))] >= 1
    assert ("gpustack_scheduler_pending_instances", ()) in samples
    assert ("gpustack_scheduler_decisions_total", (("outcome", "placed"),)) in samples
    assert samples[("gpustack_watch_subscribers", (("kind", "model_instances"),))] >= 1
    assert ("gpustack_db_pool_checked_out", ()) in samples


def test_usage_is_grouped_by_model_and_key_and_exported_as_csv(rig: Any) -> None:
    server, _, _, key = rig
    admin = server.admin()
    key_id = next(k["id"] for k in admin.get("/v2/api-keys").json()["items"] if k["name"] == "meter")
    before = _usage(server, ("admin", "admin-password-1"), group_by=["model", "api_key"])
    for _ in range(2):
        assert _chat(server, key).status_code == 200

    def counted() -> dict[str, Any] | None:
        report = _usage(server, ("admin", "admin-password-1"), group_by=["model", "api_key"])
        return report if report["summary"]["api_requests"] >= before["summary"]["api_requests"] + 2 else None

    report = wait_until(counted, "usage rows")
    row = next(i for i in report["items"] if i["model"] == "metered" and i["api_key_id"] == key_id)
    assert row["api_key_name"] == "meter" and row["output_tokens"] * TOTAL == row["total_tokens"] * len(WORDS)
    assert row["input_tokens"] == row["api_requests"] * PROMPT_TOKENS
    r = admin.get("/v2/usage/export", params={"group_by": ["model", "api_key"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    exported = next(x for x in rows if x["model"] == "metered" and x["api_key_id"] == str(key_id))
    assert int(exported["total_tokens"]) >= row["total_tokens"]


def test_a_user_sees_only_their_own_usage(rig: Any) -> None:
    server, _, _, admin_key = rig
    admin = server.admin()
    admin.post("/v2/users", json={"username": "metered-user", "password": "metered-password"})
    auth = ("metered-user", "metered-password")
    own = httpx.post(f"{server.url}/v2/api-keys", json={"name": "mine"}, auth=auth).json()["value"]
    assert _chat(server, own).status_code == 200
    assert _chat(server, admin_key).status_code == 200
    mine = wait_until(lambda: (u := _usage(server, auth, group_by="user"))["items"] and u, "the user's usage")
    assert {i["user_name"] for i in mine["items"]} == {"metered-user"}
    assert mine["summary"]["api_requests"] == 1
    asked_for_admin = _usage(server, auth, group_by="user", user_id=1)  # ignored: a user sees their own
    assert {i["user_name"] for i in asked_for_admin["items"]} == {"metered-user"}
    everyone = _usage(server, ("admin", "admin-password-1"), group_by="user")
    assert {"admin", "metered-user"} <= {i["user_name"] for i in everyone["items"]}
    now = datetime.now(UTC).date()
    today = {"start_date": (now - timedelta(days=1)).isoformat(), "end_date": now.isoformat(), "group_by": ["user"]}
    own = httpx.post(f"{server.url}/v2/usage/breakdown", json=today, auth=auth).json()  # GPUStack's form
    assert [(i["user"]["label"], i["api_requests"]) for i in own["items"]] == [("metered-user", 1)]
    admins = httpx.post(f"{server.url}/v2/usage/breakdown", json=today, auth=("admin", "admin-password-1")).json()
    assert {"admin", "metered-user"} <= {i["user"]["label"] for i in admins["items"]}


def test_usage_query_errors_are_clear(rig: Any) -> None:
    admin = rig[0].admin()
    r = admin.get("/v2/usage", params={"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"})
    assert r.status_code == 400 and "must be before" in r.text
    assert admin.get("/v2/usage", params={"group_by": "colour"}).status_code == 422


def test_usage_queued_at_shutdown_is_written_and_survives_a_restart(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 's.db'}"
    hooks = [start_gateway]
    with UsageEngine() as engine:
        # the writer would wait 10 minutes: only the shutdown flush can write these
        with run_server(tmp_path / "data", db_url, hooks=hooks, usage_flush_seconds=600) as server:
            route_model(server, db_url, engine, "kept")
            key = server.admin().post("/v2/api-keys", json={"name": "k"}).json()["value"]
            body = {"model": "kept", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"Authorization": f"Bearer {key}"}
            wait_until(
                lambda: httpx.post(f"{server.url}{CHAT}", json=body, headers=headers).status_code == 200, "route"
            )
            for _ in range(4):
                assert httpx.post(f"{server.url}{CHAT}", json=body, headers=headers).status_code == 200
            assert _usage(server, ("admin", "admin-password-1"))["summary"]["api_requests"] == 0  # still queued
        with run_server(tmp_path / "data", db_url, hooks=hooks) as again:
            report = _usage(again, ("admin", "admin-password-1"))
    assert report["summary"]["api_requests"] >= 5  # the routing probe's 200 and the four requests
    assert report["summary"]["total_tokens"] == report["summary"]["api_requests"] * TOTAL


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(rig: Any) -> None:
    """Every server-side name in docs/grafana-dashboard.json is in a real scrape (the worker's names are
    checked against a worker's scrape in tests/worker/agent/test_worker_metrics.py)."""
    from tests.utils.dashboard import dashboard_metric_names, exported_by_worker

    names = {n for n in dashboard_metric_names() if not exported_by_worker(n)}
    assert len(names) >= 15
    exported = {name for name, _ in settled(rig[0])}
    assert names - exported == set()


def test_gpu_history_serves_the_workers_samples(rig: Any) -> None:
    server = rig[0]

    def series() -> list[dict[str, Any]] | None:
        r = server.admin().get("/v2/gpu-history")
        assert r.status_code == 200, r.text
        found = [s for s in r.json()["series"] if s["worker_name"] == "w-metered"]
        return found if found and all(len(s["time"]) >= 2 for s in found) else None

    found = {s["gpu_index"]: s for s in wait_until(series, "two samples per series")}
    assert set(found) == {-1, 0}  # the host and its one GPU
    assert set(found[0]["utilization"]) == {42.0} and set(found[0]["memory_total"]) == {8 << 30}
    assert set(found[0]["power"]) == {300.0} and set(found[-1]["power"]) == {None}
    assert set(found[-1]["utilization"]) == {20.0} and set(found[-1]["memory_used"]) == {4 << 30}
    assert found[0]["time"] == sorted(found[0]["time"])
    bad = server.admin().get("/v2/gpu-history", params={"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"})
    assert bad.status_code == 400 and "must be before" in bad.text
    assert httpx.get(f"{server.url}/v2/gpu-history").status_code == 401


def test_unknown_model_names_are_not_label_values(rig: Any) -> None:
    server, _, _, key = rig
    r = httpx.post(f"{server.url}{CHAT}", json={"model": "invented-name-123", "messages": []},
                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert r.status_code == 404
    samples = settled(server)
    assert not any(dict(labels).get("model") == "invented-name-123" for _, labels in samples)
    unknown = ("gpustack_openai_requests_total", (("model", ""), ("route", CHAT), ("status", "404")))
    assert samples[unknown] >= 1
