"""The worker's Prometheus metrics: GPUs from the last status, engine processes, proxy traffic, and
engines' own /metrics relabelled per instance."""

import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpustack.schemas.instances import InstanceState
from gpustack.schemas.workers import WorkerStatus

PROXY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Served(Protocol):
    """What the metrics read of one local instance (InstanceRunner provides it)."""

    instance_id: int
    name: str
    phase: InstanceState
    pid: int | None
    restart_count: int


class WorkerMetrics:
    def __init__(self, worker: str, runners: Callable[[], Iterable[Served]]) -> None:
        self.worker = worker
        self.runners = runners
        self.status: WorkerStatus | None = None  # the last status the heartbeat collected
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gpustack_worker_proxy_requests", "Requests proxied to engines", ["instance", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "gpustack_worker_proxy_request_duration_seconds", "Proxied request latency, to the last byte",
            ["instance"], buckets=PROXY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Live(self))


class _Live(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Metric]:
        yield from _gpu_metrics(self.m.worker, self.m.status)
        yield from _instance_metrics(self.m.worker, list(self.m.runners()))


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _gpu_metrics(worker: str, status: WorkerStatus | None) -> Iterable[Metric]:
    labels = ["worker", "gpu", "name"]
    util = _gauge("gpustack_gpu_utilization_percent", "GPU core utilisation", labels)
    used = _gauge("gpustack_gpu_memory_used_bytes", "GPU memory used by processes", labels)
    total = _gauge("gpustack_gpu_memory_total_bytes", "GPU memory in total", labels)
    temp = _gauge("gpustack_gpu_temperature_celsius", "GPU temperature (where the driver reports it)", labels)
    power = _gauge("gpustack_gpu_power_watts", "GPU power draw (where the driver reports it)", labels)
    limit = _gauge("gpustack_gpu_power_limit_watts", "GPU enforced power limit (where the driver reports it)", labels)
    cpu = _gauge("gpustack_worker_cpu_utilization_percent", "Host CPU utilisation", ["worker"])
    ram_used = _gauge("gpustack_worker_memory_used_bytes", "Host memory in use", ["worker"])
    ram_total = _gauge("gpustack_worker_memory_total_bytes", "Host memory in total", ["worker"])
    if status is not None:
        for gpu in status.gpu_devices:
            key = [worker, str(gpu.index), gpu.name]
            util.add_metric(key, gpu.core_utilization)
            used.add_metric(key, gpu.memory_used)
            total.add_metric(key, gpu.memory_total)
            for family, value in ((temp, gpu.temperature), (power, gpu.power_watts), (limit, gpu.power_limit_watts)):
                if value is not None:
                    family.add_metric(key, value)
        cpu.add_metric([worker], status.cpu.utilization_rate)
        ram_used.add_metric([worker], status.memory.used)
        ram_total.add_metric([worker], status.memory.total)
    return [util, used, total, temp, power, limit, cpu, ram_used, ram_total]


def _process_usage(pid: int | None) -> tuple[float, int] | None:
    """CPU seconds and RSS of an engine process and its children; None when it is gone or unknown."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        cpu, rss = 0.0, 0
        for p in procs:
            with p.oneshot():
                times = p.cpu_times()
                cpu += times.user + times.system
                rss += p.memory_info().rss
        return cpu, rss
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _instance_metrics(worker: str, runners: list[Served]) -> Iterable[Metric]:
    labels = ["worker", "instance", "instance_id"]
    state = _gauge("gpustack_instance_state", "1 for the state each local instance is in", [*labels, "state"])
    restarts = CounterMetricFamily("gpustack_instance_restarts", "Engine restarts of an instance", labels=labels)
    cpu = CounterMetricFamily("gpustack_instance_cpu_seconds", "CPU time of the engine process tree", labels=labels)
    rss = _gauge("gpustack_instance_memory_rss_bytes", "Resident memory of the engine process tree", labels)
    for r in runners:
        key = [worker, r.name, str(r.instance_id)]
        state.add_metric([*key, r.phase.value], 1)
        restarts.add_metric(key, r.restart_count)
        usage = _process_usage(r.pid)
        if usage is not None:
            cpu.add_metric(key, usage[0])
            rss.add_metric(key, usage[1])
    return [state, restarts, cpu, rss]


class ProxyTimer:
    """Counts one proxied request when its streamed answer ends."""

    def __init__(self, metrics: WorkerMetrics, instance: str) -> None:
        self.metrics, self.instance, self.started = metrics, instance, time.perf_counter()

    def done(self, status: int) -> None:
        self.metrics.requests.labels(self.instance, str(status)).inc()
        self.metrics.latency.labels(self.instance).observe(time.perf_counter() - self.started)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?(\s.*)$")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def relabel(text: str, labels: dict[str, str]) -> list[tuple[str, list[str]]]:
    """An engine's exposition as (family, lines) with `labels` added to every sample."""
    extra = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    families: list[tuple[str, list[str]]] = []
    current: list[str] = []
    families.append(("", current))
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split()[2] if len(line.split()) > 2 else ""
            if families[-1][0] != name:
                current = []
                families.append((name, current))
            current.append(line)
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue  # comments and blank lines
        name, existing, rest = match.groups()
        inner = existing[1:-1] if existing else ""
        current.append(f"{name}{{{extra + (',' + inner if inner else '')}}}{rest}")
    return families


def merge_families(parts: Iterable[list[tuple[str, list[str]]]]) -> str:
    """Several relabelled expositions as one: each family's HELP/TYPE once, its samples together."""
    merged: dict[str, list[str]] = {}
    for families in parts:
        for name, lines in families:
            bucket = merged.get(name)
            if bucket is None:
                merged[name] = list(lines)
            else:
                bucket.extend(line for line in lines if not line.startswith("# "))
    return "".join(line + "\n" for lines in merged.values() for line in lines)


def engine_labels(worker: str, runner: Any) -> dict[str, str]:
    """Labels named apart from Prometheus' own `instance` and `job`."""
    return {
        "gpustack_worker": worker,
        "gpustack_instance": runner.name,
        "gpustack_instance_id": str(runner.instance_id),
    }
