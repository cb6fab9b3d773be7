"""The worker's metrics routes: its own /metrics, and its engines' /metrics with instance labels added."""

import asyncio
import hmac
import logging

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gpustack.schemas.instances import InstanceState
from gpustack.worker.metrics import WorkerMetrics, engine_labels, merge_families, relabel

logger = logging.getLogger(__name__)
_ENGINE_TIMEOUT = httpx.Timeout(5.0)


def metrics_allowed(request: Request) -> bool:
    """Open when metrics_auth is off; else the metrics token or the proxy credential as a bearer."""
    state = request.app.state
    if not state.metrics_auth:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    accepted = [t for t in (state.metrics_token, state.credential()) if t]
    return any(hmac.compare_digest(value.strip().encode(), t.encode()) for t in accepted)


def _refused() -> JSONResponse:
    detail = "/metrics needs 'Authorization: Bearer <metrics token>' (--metrics-token on this worker)"
    return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def worker_metrics(request: Request) -> Response:
    if not metrics_allowed(request):
        return _refused()
    metrics: WorkerMetrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _engine_text(client: httpx.AsyncClient, port: int) -> str | None:
    """The engine's own exposition; None when it serves none (llama-cpp-python has no /metrics)."""
    try:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=_ENGINE_TIMEOUT)
    except httpx.HTTPError as exc:
        logger.warning("engine metrics on port %d: %r", port, exc)
        return None
    if response.status_code != 200:
        return None
    return response.text


async def engines_metrics(request: Request) -> Response:
    """Every running engine's /metrics in one exposition, each sample labelled with its instance."""
    if not metrics_allowed(request):
        return _refused()
    state = request.app.state
    runners = [r for r in state.metrics.runners() if r.phase == InstanceState.RUNNING and r.port]
    texts = await asyncio.gather(*(_engine_text(state.http, r.port) for r in runners))
    parts, missing = [], []
    for runner, text in zip(runners, texts, strict=True):
        if text is None:
            missing.append(runner.name)
        else:
            parts.append(relabel(text, engine_labels(state.metrics.worker, runner)))
    body = merge_families(parts)
    if missing:
        body = f"# gpustack: no engine /metrics from {', '.join(missing)} (the engine serves none)\n" + body
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def instance_metrics(request: Request, instance_id: int) -> Response:
    """One engine's /metrics with its instance labels; a 404 that says so when the engine has none."""
    if not metrics_allowed(request):
        return _refused()
    state = request.app.state
    runner = state.lookup(instance_id)
    if runner is None or runner.phase != InstanceState.RUNNING or not runner.port:
        return JSONResponse({"detail": f"model instance {instance_id} is not running on this worker"}, 404)
    text = await _engine_text(state.http, runner.port)
    if text is None:
        detail = (
            f"the engine of instance {runner.name} serves no /metrics (llama-cpp-python has none; vLLM and "
            "SGLang do, and llama.cpp's llama-server with --metrics)"
        )
        return JSONResponse({"detail": detail}, 404)
    return Response(merge_families([relabel(text, engine_labels(state.metrics.worker, runner))]),
                    media_type=CONTENT_TYPE_LATEST)  # fmt: skip
