"""The metric names docs/grafana-dashboard.json queries, split by the process that exports them."""

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
WORKER_PREFIXES = ("gpustack_gpu_", "gpustack_worker_", "gpustack_instance_")
_NAME = re.compile(r"\bgpustack_[a-z0-9_]+")


def dashboard_metric_names() -> set[str]:
    """Every gpustack_* name in a panel's PromQL (histogram series keep their _bucket suffix)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {name for p in panels for t in p["targets"] for name in _NAME.findall(t["expr"])}


def exported_by_worker(name: str) -> bool:
    return name.startswith(WORKER_PREFIXES)
