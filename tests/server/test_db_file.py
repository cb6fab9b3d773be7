"""The SQLite database file holds password hashes and API key hashes: only its owner may read it."""

import os
import stat
from pathlib import Path

from gpustack.cli import main
from tests.utils.server import run_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_creates_its_sqlite_database_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "data" / "database.db"
        with run_server(tmp_path / "data", f"sqlite:///{db}") as server, server.admin() as admin:
            assert admin.get("/v2/models").status_code == 200
            assert _mode(db) == 0o600
            wal = db.with_name("database.db-wal")
            assert not wal.exists() or _mode(wal) == 0o600
    finally:
        os.umask(old)


def test_migrate_creates_the_default_database_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["migrate", "--data-dir", str(tmp_path / "d")]) == 0
    finally:
        os.umask(old)
    assert _mode(tmp_path / "d" / "database.db") == 0o600


def test_an_existing_database_file_is_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "d" / "database.db"
    db.parent.mkdir()
    db.touch(mode=0o640)
    os.chmod(db, 0o640)
    assert main(["migrate", "--data-dir", str(tmp_path / "d")]) == 0
    assert _mode(db) == 0o640
