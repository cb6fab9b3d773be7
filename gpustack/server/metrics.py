"""The server's Prometheus metrics: one registry per app, updated in memory, rendered on scrape."""

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Latency of OpenAI requests: from milliseconds (errors, embeddings) to minutes (long generations).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _LiveCollector(Collector):
    """Values read from in-memory objects at scrape time (never the database)."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()


class ServerMetrics:
    """Every metric the server exports; the gateway and the observer loops update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["model", "route", "status"]
        self.requests = Counter("gpustack_openai_requests", "OpenAI API requests", labels, registry=r)
        self.latency = Histogram(
            "gpustack_openai_request_duration_seconds",
            "OpenAI request latency, from arrival to the last byte",
            ["model", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gpustack_openai_time_to_first_token_seconds",
            "Time from a request's arrival to the first byte of the engine's answer",
            ["model", "route"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("gpustack_prompt_tokens", "Prompt tokens metered", ["model"], registry=r)
        self.completion_tokens = Counter(
            "gpustack_completion_tokens", "Completion tokens metered", ["model"], registry=r
        )
        self.in_flight = Gauge("gpustack_openai_requests_in_flight", "OpenAI requests being answered", registry=r)
        self.usage_queue = Gauge("gpustack_usage_queue_length", "Usage records waiting to be written", registry=r)
        self.usage_written = Counter("gpustack_usage_records_written", "Usage records written to SQL", registry=r)
        self.instances = Gauge("gpustack_model_instances", "Model instances by state", ["state"], registry=r)
        self.workers = Gauge("gpustack_workers", "Workers by state", ["state"], registry=r)
        self.pending = Gauge(
            "gpustack_scheduler_pending_instances", "Instances waiting for a placement (pending or analyzing)",
            registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "gpustack_scheduler_decisions", "Scheduling outcomes (placed or refused)", ["outcome"], registry=r
        )
        self.sources: dict[str, Callable[[], Any]] = {}
        r.register(_LiveCollector(self._live))

    def watch_live(self, name: str, read: Callable[[], Any]) -> None:
        """Registers an in-memory source read at scrape time: `bus` (EventBus) or `pool` (SQLAlchemy pool)."""
        self.sources[name] = read

    def _live(self) -> Iterable[Metric]:
        bus = self.sources.get("bus")
        if bus is not None:
            family = GaugeMetricFamily("gpustack_watch_subscribers", "Open watch subscriptions", labels=["kind"])
            for kind, count in sorted(bus().subscriber_counts().items()):
                family.add_metric([kind], count)
            yield family
        pool = self.sources.get("pool")
        if pool is not None:
            yield from _pool_metrics(pool())


def _pool_metrics(pool: Any) -> Iterable[Metric]:
    """Connection pool gauges where the pool keeps them (QueuePool; SQLite's pools may not)."""
    for name, attr, doc in (
        ("gpustack_db_pool_size", "size", "Connections the pool keeps"),
        ("gpustack_db_pool_checked_out", "checkedout", "Connections in use"),
        ("gpustack_db_pool_overflow", "overflow", "Connections beyond the pool size"),
        ("gpustack_db_pool_checked_in", "checkedin", "Idle connections in the pool"),
    ):
        read = getattr(pool, attr, None)
        yield GaugeMetricFamily(name, doc, value=float(read()) if callable(read) else 0.0)
