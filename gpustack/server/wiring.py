"""Start hooks that attach the reconcile loops and the OpenAI gateway to the server app."""

from fastapi import FastAPI

from gpustack.core.tasks import TaskGroup
from gpustack.schemas.model_metadata import ModelMetadataCachePublic
from gpustack.server.app import StartHook
from gpustack.server.controllers.loop import reconcile_forever
from gpustack.server.controllers.metadata import MetadataController, MetadataStatus
from gpustack.server.controllers.models import reconcile_models
from gpustack.server.controllers.observe import count_decisions, refresh_state_gauges, sample_history
from gpustack.server.controllers.scheduling import SchedulingController
from gpustack.server.controllers.workers import WorkerLiveness


def start_controllers(app: FastAPI, tasks: TaskGroup) -> None:
    config, db, bus = app.state.config, app.state.db, app.state.bus
    bus.register("model_metadata_cache", ModelMetadataCachePublic)  # a stored row wakes the scheduler
    status = MetadataStatus()
    scheduler = SchedulingController(db, status)
    fetcher = MetadataController(db, status, secret_key=app.state.secret_key)
    tasks.spawn(
        "model-controller",
        lambda: reconcile_forever(
            "models", lambda: reconcile_models(db), period=5.0, bus=bus, kinds=("models", "model_instances")
        ),
    )
    tasks.spawn(
        "scheduler",
        lambda: reconcile_forever(
            "scheduler",
            scheduler.reconcile,
            period=config.scheduler_scan_seconds,
            bus=bus,
            kinds=("model_instances", "workers", "model_metadata_cache"),
            debounce=0.2,
        ),
    )
    tasks.spawn(
        "model-metadata",
        lambda: reconcile_forever(
            "model-metadata",
            fetcher.reconcile,
            period=config.scheduler_scan_seconds,
            bus=bus,
            kinds=("models", "model_instances"),
        ),
    )
    check_every = max(0.5, min(5.0, config.heartbeat_grace_seconds / 3))
    liveness = WorkerLiveness(
        db,
        grace=config.heartbeat_grace_seconds,
        reschedule_after=config.reschedule_after_seconds,
        outage_after=max(3 * check_every, config.heartbeat_interval_seconds * 2),
    )
    tasks.spawn("worker-liveness", lambda: reconcile_forever("workers", liveness.reconcile, period=check_every))


def start_observers(app: FastAPI, tasks: TaskGroup) -> None:
    """The loops behind /metrics' state gauges and the GPU history (the scrape never reads the DB)."""
    config, db, bus, metrics = app.state.config, app.state.db, app.state.bus, app.state.metrics
    tasks.spawn(
        "metrics-states",
        lambda: reconcile_forever(
            "metrics-states",
            lambda: refresh_state_gauges(db, metrics),
            period=15.0,
            bus=bus,
            kinds=("model_instances", "workers"),
            debounce=1.0,
        ),
    )
    tasks.spawn("metrics-decisions", lambda: count_decisions(bus, metrics))
    tasks.spawn(
        "gpu-history",
        lambda: reconcile_forever(
            "gpu-history",
            lambda: sample_history(db, config.gpu_history_retention_days),
            period=config.gpu_history_interval_seconds,
        ),
    )


def server_hooks() -> list[StartHook]:
    from gpustack.gateway.wiring import start_gateway

    return [start_controllers, start_observers, start_gateway]
