"""Shared fixtures: a real server over HTTP for each database backend."""

from collections.abc import Iterator

import pytest

from tests.utils.databases import BACKENDS, temporary_database
from tests.utils.server import RunningServer, run_server


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per database backend for the session; tests use unique names."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    with temporary_database(request.param, tmp) as url, run_server(tmp / "data", url) as running:
        yield running
