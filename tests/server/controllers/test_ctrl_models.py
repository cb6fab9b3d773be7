"""Model controller against a real database: replicas -> instances, model state and ready count."""

import pytest
from ctrl_db import set_replicas
from sqlmodel import col, select

from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.models import Model, ModelState
from gpustack.server.controllers.models import model_state, reconcile_models
from gpustack.server.db import Database

S = InstanceState


async def add_model(db: Database, name: str, replicas: int, states: list[InstanceState] = ()) -> Model:  # type: ignore[assignment]
    async with db.session() as session:
        model = Model(name=name, local_path="/models/x.gguf", replicas=replicas)
        session.add(model)
        await session.flush()
        for i, state in enumerate(states):
            session.add(ModelInstance(name=f"{name}-i{i}", model_id=model.id, model_name=name, state=state))  # type: ignore[arg-type]
        await session.commit()
        return model


async def load(db: Database, model_id: int) -> tuple[Model, list[ModelInstance]]:
    async with db.session() as session:
        model = await session.get(Model, model_id)
        stmt = select(ModelInstance).where(ModelInstance.model_id == model_id).order_by(col(ModelInstance.id))
        instances = list((await session.execute(stmt)).scalars().all())
    assert model is not None
    return model, instances


async def set_states(db: Database, model_id: int, states: list[InstanceState]) -> None:
    async with db.session() as session:
        stmt = select(ModelInstance).where(ModelInstance.model_id == model_id).order_by(col(ModelInstance.id))
        rows = (await session.execute(stmt)).scalars().all()
        assert len(rows) == len(states)
        for row, state in zip(rows, states, strict=True):
            row.state = state
        await session.commit()


@pytest.mark.parametrize(
    ("replicas", "states", "expected"),
    [
        (0, [], (ModelState.STOPPED, 0)),
        (0, [S.RUNNING], (ModelState.STOPPED, 1)),
        (1, [], (ModelState.PENDING, 0)),
        (2, [S.PENDING, S.SCHEDULED], (ModelState.PENDING, 0)),
        (2, [S.RUNNING, S.STARTING], (ModelState.PARTIALLY_RUNNING, 1)),
        (2, [S.RUNNING, S.ERROR], (ModelState.PARTIALLY_RUNNING, 1)),
        (2, [S.RUNNING, S.RUNNING], (ModelState.RUNNING, 2)),
        (2, [S.ERROR, S.ERROR], (ModelState.ERROR, 0)),
        (2, [S.ERROR, S.PENDING], (ModelState.PENDING, 0)),
        (1, [S.UNREACHABLE], (ModelState.PENDING, 0)),
    ],
)
def test_model_state_is_a_pure_function_of_replicas_and_instance_states(
    replicas: int, states: list[InstanceState], expected: tuple[ModelState, int]
) -> None:
    assert model_state(replicas, [str(s) for s in states]) == expected


async def test_scale_up_creates_pending_instances_named_after_the_model(db: Database) -> None:
    model = await add_model(db, "scale-up", replicas=3)

    await reconcile_models(db)

    model, instances = await load(db, model.id)  # type: ignore[arg-type]
    assert len(instances) == 3
    assert all(i.state == S.PENDING and i.worker_id is None for i in instances)
    assert all(i.name.startswith("scale-up-") and i.model_name == "scale-up" for i in instances)
    assert len({i.name for i in instances}) == 3
    assert (model.state, model.ready_replicas) == (ModelState.PENDING, 0)


async def test_reconcile_is_idempotent(db: Database) -> None:
    model = await add_model(db, "steady", replicas=2, states=[S.RUNNING])

    await reconcile_models(db)
    first = await load(db, model.id)  # type: ignore[arg-type]
    await reconcile_models(db)
    second = await load(db, model.id)  # type: ignore[arg-type]

    assert [i.id for i in first[1]] == [i.id for i in second[1]]
    assert len(second[1]) == 2
    assert (second[0].state, second[0].ready_replicas) == (ModelState.PARTIALLY_RUNNING, 1)


async def test_scale_up_next_to_failed_instances_reports_pending_in_the_same_pass(db: Database) -> None:
    """The state written by one pass counts the instances that pass created (a second pass changes nothing)."""
    model = await add_model(db, "retry", replicas=2, states=[S.ERROR])

    await reconcile_models(db)
    model, instances = await load(db, model.id)  # type: ignore[arg-type]

    assert sorted(i.state for i in instances) == [S.ERROR, S.PENDING]
    assert model.state == ModelState.PENDING


async def test_scale_down_removes_failed_and_pending_before_running(db: Database) -> None:
    model = await add_model(
        db, "scale-down", replicas=5, states=[S.RUNNING, S.ERROR, S.STARTING, S.PENDING, S.UNREACHABLE]
    )
    _, before = await load(db, model.id)  # type: ignore[arg-type]
    ids = {i.state: i.id for i in before}

    await set_replicas(db, model.id, 2)  # type: ignore[arg-type]
    await reconcile_models(db)
    model, left = await load(db, model.id)  # type: ignore[arg-type]
    assert {i.id for i in left} == {ids[S.RUNNING], ids[S.STARTING]}
    assert (model.state, model.ready_replicas) == (ModelState.PARTIALLY_RUNNING, 1)

    await set_replicas(db, model.id, 1)  # type: ignore[arg-type]
    await reconcile_models(db)
    model, left = await load(db, model.id)  # type: ignore[arg-type]
    assert [i.id for i in left] == [ids[S.RUNNING]]
    assert (model.state, model.ready_replicas) == (ModelState.RUNNING, 1)


async def test_scale_down_among_equals_removes_the_newest(db: Database) -> None:
    model = await add_model(db, "newest", replicas=3, states=[S.RUNNING, S.RUNNING, S.RUNNING])
    _, before = await load(db, model.id)  # type: ignore[arg-type]

    await set_replicas(db, model.id, 1)  # type: ignore[arg-type]
    await reconcile_models(db)

    _, left = await load(db, model.id)  # type: ignore[arg-type]
    assert [i.id for i in left] == [before[0].id]


async def test_model_state_follows_instance_states(db: Database) -> None:
    model = await add_model(db, "states", replicas=2)
    mid: int = model.id  # type: ignore[assignment]

    await reconcile_models(db)
    model, _ = await load(db, mid)
    assert (model.state, model.ready_replicas) == (ModelState.PENDING, 0)

    for states, expected in [
        ([S.RUNNING, S.STARTING], (ModelState.PARTIALLY_RUNNING, 1)),
        ([S.RUNNING, S.RUNNING], (ModelState.RUNNING, 2)),
        ([S.ERROR, S.ERROR], (ModelState.ERROR, 0)),
        ([S.UNREACHABLE, S.RUNNING], (ModelState.PARTIALLY_RUNNING, 1)),
    ]:
        await set_states(db, mid, states)
        await reconcile_models(db)
        model, _ = await load(db, mid)
        assert (model.state, model.ready_replicas) == expected, states

    await set_replicas(db, mid, 0)
    await reconcile_models(db)
    model, instances = await load(db, mid)
    assert instances == []
    assert (model.state, model.ready_replicas) == (ModelState.STOPPED, 0)


async def test_renamed_model_renames_its_instances_and_leaves_other_models_alone(db: Database) -> None:
    model = await add_model(db, "old-name", replicas=1, states=[S.RUNNING])
    other = await add_model(db, "other", replicas=1, states=[S.RUNNING])
    async with db.session() as session:
        row = await session.get(Model, model.id)
        assert row is not None
        row.name = "new-name"
        await session.commit()

    await reconcile_models(db)

    _, instances = await load(db, model.id)  # type: ignore[arg-type]
    assert [i.model_name for i in instances] == ["new-name"]
    other, others = await load(db, other.id)  # type: ignore[arg-type]
    assert [i.model_name for i in others] == ["other"]
    assert (other.state, other.ready_replicas) == (ModelState.RUNNING, 1)


async def test_a_steady_pass_loads_no_instance_rows(db: Database) -> None:
    """The model controller counts instances in SQL; it loads rows only of models it scales down or
    renames, so its cost does not grow with every pending instance."""
    from sqlalchemy import event

    async with db.session() as session:
        for i in range(4):
            session.add(Model(name=f"steady-{i}", local_path="/m.gguf", replicas=25))
        await session.commit()
    await reconcile_models(db)  # creates 100 instances
    loaded: list[object] = []

    def on_load(target: object, _context: object) -> None:
        loaded.append(target)

    event.listen(ModelInstance, "load", on_load)
    try:
        await reconcile_models(db)
    finally:
        event.remove(ModelInstance, "load", on_load)
    assert loaded == []
    async with db.session() as session:
        count = len((await session.execute(select(ModelInstance))).scalars().all())
    assert count == 100
