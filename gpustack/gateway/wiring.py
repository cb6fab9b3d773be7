"""Attaches the gateway: routes, the shared HTTP client, and the routing-table refresh loop."""

import functools

import httpx
from fastapi import FastAPI

from gpustack.core.http import fast_async_client
from gpustack.core.tasks import TaskGroup
from gpustack.gateway.auth import CallerCache, clear_on_changes
from gpustack.gateway.metering import Meter, write_forever
from gpustack.gateway.service import Gateway
from gpustack.server.controllers.loop import reconcile_forever

# Engines may think for minutes before the first token (the gateway probes the worker when its answer
# takes longer than the first-byte timeout); connecting must be quick.
_TIMEOUT = httpx.Timeout(connect=5.0, read=600.0, write=60.0, pool=10.0)
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)


def start_gateway(app: FastAPI, tasks: TaskGroup) -> None:
    state = app.state
    callers = CallerCache()
    meter = Meter(state.metrics, persist=state.config.usage_metering)
    config = state.config
    tasks.spawn(
        "usage-writer",
        lambda: write_forever(
            meter, state.db, interval=config.usage_flush_seconds, retention_days=config.usage_retention_days
        ),
    )
    for kind in ("users", "api_keys"):
        tasks.spawn(f"gateway-auth-{kind}", functools.partial(clear_on_changes, state.bus, kind, callers))

    async def run() -> None:
        async with fast_async_client(timeout=_TIMEOUT, limits=_LIMITS) as client:
            gateway = Gateway(
                db=state.db,
                secret_key=state.secret_key,
                client=client,
                callers=callers,
                meter=meter,
                first_byte_timeout=state.config.gateway_first_byte_timeout_seconds,
            )
            state.gateway = gateway
            await reconcile_forever(
                "routing-table",
                lambda: gateway.table.refresh(state.db),
                period=5.0,
                bus=state.bus,
                kinds=("models", "model_instances", "workers"),
                debounce=0.0,
            )

    tasks.spawn("gateway", run)
