"""Worker filters: readiness, label selector and manual GPU selector, with their reasons."""

import dataclasses

import pytest

from gpustack.scheduler.filters import (
    filter_gpu_selector,
    filter_labels,
    filter_ready,
    parse_gpu_selector,
    run_filters,
)

from ._snapshots import gpu, model, worker


def test_not_ready_worker_is_refused() -> None:
    workers = [worker(1, "a"), worker(2, "b", state="not_ready"), worker(3, "c", state="unreachable")]
    kept, reasons = filter_ready(model(), workers)
    assert [w.name for w in kept] == ["a"]
    assert reasons == {"b": "worker is not_ready", "c": "worker is unreachable"}


def test_worker_in_maintenance_takes_no_new_replicas_and_says_why() -> None:
    workers = [
        dataclasses.replace(worker(1, "a"), maintenance="replacing a fan"),
        dataclasses.replace(worker(2, "b"), maintenance=""),
        worker(3, "c"),
        dataclasses.replace(worker(4, "d", state="not_ready"), maintenance="x"),
    ]
    kept, reasons = filter_ready(model(), workers)
    assert [w.name for w in kept] == ["c"]
    assert reasons == {
        "a": "worker is in maintenance (replacing a fan)",
        "b": "worker is in maintenance",
        "d": "worker is not_ready",
    }


def test_label_selector_mismatch_says_wanted_and_had() -> None:
    workers = [
        worker(1, "a", labels={"gpu": "a100", "zone": "x"}),
        worker(2, "b", labels={"gpu": "h100"}),
        worker(3, "c", labels={}),
    ]
    kept, reasons = filter_labels(model(worker_selector={"gpu": "a100"}), workers)
    assert [w.name for w in kept] == ["a"]
    assert reasons["b"] == "label selector wants gpu=a100, worker has gpu=h100"
    assert reasons["c"] == "label selector wants gpu=a100, worker has no label 'gpu'"


def test_empty_label_selector_keeps_everyone() -> None:
    workers = [worker(1, "a"), worker(2, "b", labels={"x": "y"})]
    kept, reasons = filter_labels(model(), workers)
    assert kept == workers and reasons == {}


def test_gpu_selector_keeps_named_workers_and_listed_gpus() -> None:
    workers = [worker(1, "w1", [gpu(0, 24), gpu(1, 24), gpu(2, 24)]), worker(2, "w2", [gpu(0, 80)])]
    kept, reasons = filter_gpu_selector(model(gpu_selector=("w1:0", "w1:2")), workers)
    assert [w.name for w in kept] == ["w1"]
    assert [g.index for g in kept[0].gpus] == [0, 2]
    assert reasons == {"w2": "not selected by the model's gpu_selector"}
    assert len(workers[0].gpus) == 3  # input snapshots are not modified


def test_gpu_selector_index_the_worker_lacks() -> None:
    workers = [worker(1, "w1", [gpu(0, 24), gpu(1, 24)]), worker(2, "cpu-box")]
    kept, reasons = filter_gpu_selector(model(gpu_selector=("w1:5", "cpu-box:0")), workers)
    assert kept == []
    assert reasons["w1"] == "gpu_selector wants GPU 5, worker has GPUs 0, 1"
    assert reasons["cpu-box"] == "gpu_selector wants GPU 0, worker has no GPUs"


def test_gpu_selector_worker_names_may_contain_colons() -> None:
    assert parse_gpu_selector(["host:8080:1", "host:8080:3", "b:0"]) == {"host:8080": {1, 3}, "b": {0}}
    with pytest.raises(ValueError, match="'w1' must look like"):
        parse_gpu_selector(["w1"])


def test_run_filters_reports_first_refusal_per_worker() -> None:
    workers = [
        worker(1, "down", [gpu(0, 24)], state="not_ready", labels={"gpu": "h100"}),
        worker(2, "wrong-label", [gpu(0, 24)], labels={"gpu": "t4"}),
        worker(3, "unselected", [gpu(0, 24)], labels={"gpu": "h100"}),
        worker(4, "ok", [gpu(0, 24), gpu(1, 24)], labels={"gpu": "h100"}),
    ]
    m = model(worker_selector={"gpu": "h100"}, gpu_selector=("ok:1", "down:0"))
    kept, reasons = run_filters(m, workers)
    assert [(w.name, [g.index for g in w.gpus]) for w in kept] == [("ok", [1])]
    assert reasons == {
        "down": "worker is not_ready",
        "wrong-label": "label selector wants gpu=h100, worker has gpu=t4",
        "unselected": "not selected by the model's gpu_selector",
    }
