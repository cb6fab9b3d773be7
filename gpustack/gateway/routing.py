"""In-memory routing table (model name -> running instances -> worker URL), rebuilt from the DB."""

import itertools
from dataclasses import dataclass, field
from datetime import UTC

from sqlmodel import select

from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker, WorkerState, url_host
from gpustack.server.db import Database


@dataclass(frozen=True)
class Route:
    instance_id: int
    worker_name: str
    base_url: str  # e.g. http://10.0.0.2:10150/proxy/12
    worker_url: str = ""  # e.g. http://10.0.0.2:10150
    proxy_nonce: str = ""  # the worker's current proxy credential is derived from it


@dataclass
class ModelRoutes:
    model_id: int
    created: int
    routes: tuple[Route, ...] = ()
    categories: tuple[str, ...] = ()  # empty: unknown, every endpoint is tried
    _counter: itertools.count = field(default_factory=itertools.count)

    def ordered(self) -> list[Route]:
        """Round-robin: each call starts one further along; the rest follow as fallbacks."""
        if not self.routes:
            return []
        start = next(self._counter) % len(self.routes)
        return list(self.routes[start:] + self.routes[:start])


class RoutingTable:
    def __init__(self) -> None:
        self.models: dict[str, ModelRoutes] = {}
        self.dirty = True

    async def refresh(self, db: Database) -> None:
        async with db.session() as session:
            models = (await session.execute(select(Model))).scalars().all()
            workers = {w.id: w for w in (await session.execute(select(Worker))).scalars().all()}
            running = (
                (await session.execute(select(ModelInstance).where(ModelInstance.state == InstanceState.RUNNING)))
                .scalars()
                .all()
            )
        routes: dict[int, list[Route]] = {}
        for inst in sorted(running, key=lambda i: i.id or 0):
            worker = workers.get(inst.worker_id)
            if worker is None or worker.state != WorkerState.READY:
                continue
            worker_url = f"http://{url_host(worker.ip)}:{worker.port}"
            route = Route(inst.id, worker.name, f"{worker_url}/proxy/{inst.id}", worker_url, worker.proxy_nonce)  # type: ignore[arg-type]
            routes.setdefault(inst.model_id, []).append(route)
        table = {}
        for model in models:
            old = self.models.get(model.name)
            created = int(model.created_at.replace(tzinfo=UTC).timestamp())  # stored as naive UTC
            entry = ModelRoutes(model.id, created, tuple(routes.get(model.id, [])), tuple(model.categories))  # type: ignore[arg-type]
            if old is not None:
                entry._counter = old._counter
            table[model.name] = entry
        self.models = table
        self.dirty = False
