"""Row edits shared by the controller tests."""

from gpustack.schemas.models import Model
from gpustack.server.db import Database


async def set_replicas(db: Database, model_id: int, replicas: int) -> None:
    async with db.session() as session:
        model = await session.get(Model, model_id)
        assert model is not None
        model.replicas = replicas
        await session.commit()
