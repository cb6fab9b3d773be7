"""FastAPI factory and the lifespan that migrates the DB and owns every background task."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from gpustack import __version__
from gpustack.config import Config
from gpustack.core.tasks import TaskGroup
from gpustack.gateway.router import routers as openai_routers
from gpustack.schemas.api_keys import ApiKeyPublic
from gpustack.schemas.instances import ModelInstancePublic
from gpustack.schemas.model_files import ModelFilePublic
from gpustack.schemas.models import ModelPublic
from gpustack.schemas.users import UserPublic
from gpustack.schemas.workers import WorkerPublic
from gpustack.server.db import Database, create_private_sqlite_file
from gpustack.server.errors import install_error_handlers
from gpustack.server.events import EventBus
from gpustack.server.limits import BodyLimitMiddleware
from gpustack.server.metrics import ServerMetrics
from gpustack.server.migrate import run_migrations
from gpustack.server.routers import (
    api_keys,
    auth,
    clusters,
    gpu_history,
    health,
    inference_backends,
    instances,
    metrics,
    model_evaluations,
    model_files,
    models,
    ui,
    usage,
    users,
    workers,
)
from gpustack.server.services.inference_backends import seed_built_ins
from gpustack.server.services.users import bootstrap_admin
from gpustack.server.throttle import LoginThrottle

logger = logging.getLogger(__name__)

# Extra start-up hooks (controllers, gateway); each gets the app and its TaskGroup.
StartHook = Callable[[FastAPI, TaskGroup], None]


def _make_bus() -> EventBus:
    bus = EventBus()
    bus.register("workers", WorkerPublic)
    bus.register("models", ModelPublic)
    bus.register("model_instances", ModelInstancePublic)
    bus.register("model_files", ModelFilePublic)
    bus.register("users", UserPublic)  # no watch route: the gateway drops cached credentials on changes
    bus.register("api_keys", ApiKeyPublic)
    return bus


def _v2_router() -> APIRouter:
    v2 = APIRouter(prefix="/v2")
    for module in (
        models, instances, workers, users, api_keys, model_files, clusters, model_evaluations, usage, gpu_history,
        inference_backends,
    ):  # fmt: skip
        v2.include_router(module.router)
    return v2


def _metrics(app: FastAPI, bus: EventBus) -> ServerMetrics:
    metrics = ServerMetrics()
    metrics.watch_live("bus", lambda: bus)
    metrics.watch_live("pool", lambda: app.state.db.engine.pool)
    return metrics


def create_app(config: Config, start_hooks: list[StartHook] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        db = app.state.db
        create_private_sqlite_file(db.url)
        await run_migrations(db.engine)
        async with db.session() as session:
            await bootstrap_admin(session=session, password=config.bootstrap_password, data_dir=config.data_dir)
            await seed_built_ins(session=session)
        tasks = TaskGroup()
        for hook in start_hooks or []:
            hook(app, tasks)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await tasks.stop()
            await db.dispose()

    app = FastAPI(title="GPUStack", version=__version__, lifespan=lifespan)
    bus = _make_bus()
    app.state.config = config
    app.state.bus = bus
    app.state.db = Database(config.resolved_database_url(), bus=bus)
    app.state.token = config.ensure_token()
    app.state.secret_key = config.secret_key()
    app.state.ready = False
    app.state.login_throttle = LoginThrottle()
    app.state.metrics = _metrics(app, bus)
    app.add_middleware(BodyLimitMiddleware, openai_limit=config.openai_max_body_mib << 20)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(_v2_router())
    for openai_router in openai_routers:
        app.include_router(openai_router)
    app.include_router(ui.router)
    return app
