"""Engine records in the worker's data dir: atomic private files, corrupt ones dropped."""

from pathlib import Path

from gpustack.worker.records import EngineRecord, EngineRecords


def _record(instance_id: int) -> EngineRecord:
    return EngineRecord(
        instance_id=instance_id, instance_name=f"m-{instance_id}", runtime="process", handle="4242",
        identity="1700000000.5", port=40000 + instance_id, health_path="/v1/models",
    )  # fmt: skip


def test_records_round_trip_privately_and_are_removed(tmp_path: Path) -> None:
    records = EngineRecords(tmp_path)
    assert records.load_all() == []
    records.save(_record(1))
    records.save(_record(2))
    assert records.load_all() == [_record(1), _record(2)]
    assert (tmp_path / "engines" / "1.json").stat().st_mode & 0o777 == 0o600
    records.remove(1)
    records.remove(99)  # unknown: no error
    assert records.load_all() == [_record(2)]


def test_unreadable_records_are_dropped(tmp_path: Path) -> None:
    records = EngineRecords(tmp_path)
    records.save(_record(3))
    (tmp_path / "engines" / "7.json").write_text("{truncated")
    (tmp_path / "engines" / "8.json").write_text('{"instance_id": "x"}')
    assert records.load_all() == [_record(3)]
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == ["3.json"]
