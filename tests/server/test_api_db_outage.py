"""A database outage over real sockets: the server's PostgreSQL connections go through a relay that the
test cuts. Requests get a short 503 (no traceback per request), the outage is logged once, and the server
answers normally again once the database is back."""

import logging
import time
from pathlib import Path

import pytest

from tests.utils.databases import temporary_database
from tests.utils.server import run_server
from tests.utils.tcp_relay import TcpRelay


def test_database_outage_is_a_short_503_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with temporary_database("postgresql", tmp_path) as url:
        relay = TcpRelay(("127.0.0.1", int(url.split("@127.0.0.1:", 1)[1].split("/", 1)[0])))
        relayed = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{relay.port}/")
        assert relayed != url
        try:
            with run_server(tmp_path / "data", relayed) as server, server.admin() as admin:
                key = admin.post("/v2/api-keys", json={"name": "outage", "scope": ["management"]}).json()["value"]
                with server.client(headers={"Authorization": f"Bearer {key}"}) as api:
                    assert api.get("/v2/models").status_code == 200
                    caplog.clear()
                    relay.cut()
                    answers = [api.get("/v2/models") for _ in range(5)]
                    for response in answers:
                        assert response.status_code == 503, response.text
                        assert response.json() == {
                            "code": 503,
                            "reason": "ServiceUnavailable",
                            "message": "the database is unavailable; try again shortly (the server keeps retrying)",
                        }
                    outage_logs = [r for r in caplog.records if "database unavailable" in r.getMessage()]
                    assert len(outage_logs) == 1, [r.getMessage() for r in caplog.records]
                    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
                    relay.restore()
                    deadline = time.monotonic() + 15
                    while (status := api.get("/v2/models").status_code) != 200:
                        assert time.monotonic() < deadline, f"still {status} after the database came back"
                        time.sleep(0.2)
                    assert any("database available again" in r.getMessage() for r in caplog.records)
        finally:
            relay.cut()
