"""What this worker started, kept in its data dir, so a restarted worker can adopt or reap its engines."""

import json
import logging
from pathlib import Path

from pydantic import BaseModel, ValidationError

from gpustack.core.files import write_private_atomic

logger = logging.getLogger(__name__)


class EngineRecord(BaseModel):
    """One launched engine: its runtime handle (pid or container id) and how to recognise it again."""

    instance_id: int
    instance_name: str
    runtime: str  # "process" or "docker"
    handle: str
    identity: str = ""  # process start time: a recycled pid is not our engine
    port: int
    health_path: str = "/"


class EngineRecords:
    """One JSON file per instance under `<data dir>/engines/`, written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "engines"

    def _path(self, instance_id: int) -> Path:
        return self.directory / f"{instance_id}.json"

    def save(self, record: EngineRecord) -> None:
        try:
            write_private_atomic(self._path(record.instance_id), record.model_dump_json())
        except OSError as exc:  # the engine runs anyway; only a worker crash would leave it unmanaged
            logger.warning("cannot record engine of %s in %s: %s", record.instance_name, self.directory, exc)

    def remove(self, instance_id: int) -> None:
        self._path(instance_id).unlink(missing_ok=True)

    def load_all(self) -> list[EngineRecord]:
        """Every readable record; unreadable ones are logged and removed (nothing could act on them)."""
        if not self.directory.is_dir():
            return []
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                records.append(EngineRecord.model_validate(json.loads(path.read_text())))
            except (OSError, ValueError, ValidationError) as exc:
                logger.warning("ignoring unreadable engine record %s: %s", path, exc)
                path.unlink(missing_ok=True)
        return records
