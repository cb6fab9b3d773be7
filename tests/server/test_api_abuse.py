"""Unauthenticated abuse over real HTTP: body size limits per route, failed-login throttling, and a
login answer that does not depend on whether the user exists."""

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gpustack.gateway.wiring import start_gateway
from gpustack.server import security
from tests.utils.server import ADMIN_PASSWORD, RunningServer, run_server

MIB = 1 << 20


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own: these tests use up its login budget on purpose."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with run_server(tmp_path / "data", url, hooks=[start_gateway], openai_max_body_mib=2) as running:
        yield running


def _from(address: str, server: RunningServer) -> httpx.Client:
    """A client whose connections come from another loopback address (127.0.0.0/8 is all local)."""
    return httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r.getMessage() for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]


def test_management_bodies_over_one_mib_are_413_with_a_message(
    own_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with own_server.client() as anonymous:
        declared = anonymous.post("/auth/login", content=b"{" + b" " * (MIB + 10) + b"}")
        streamed = anonymous.post("/v2/models", content=_chunks(MIB + 65536))
        small = anonymous.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert "larger than this endpoint accepts" in response.json()["message"]
    assert small.status_code == 200
    _no_tracebacks(caplog)


def test_openai_bodies_have_their_own_configurable_limit(
    own_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    with own_server.admin() as admin:
        key = admin.post("/v2/api-keys", json={"name": "limits"}).json()["value"]
    with own_server.client(headers={"Authorization": f"Bearer {key}"}) as client:
        over = client.post("/v1/chat/completions", content=b"x" * (2 * MIB + 1))
        streamed = client.post("/v1/chat/completions", content=_chunks(3 * MIB))
        under = client.post("/v1/chat/completions", content=b"{" + b" " * MIB + b"}")  # over /v2's limit
    for response in (over, streamed):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and "--openai-max-body-mib" in error["message"]
    assert under.status_code == 400 and "'model'" in under.json()["error"]["message"]  # read, then judged
    _no_tracebacks(caplog)


def test_failed_logins_from_one_address_are_throttled_with_retry_after(own_server: RunningServer) -> None:
    def wrong(i: int) -> dict[str, str]:
        return {"username": f"user{i}", "password": "wrong"}  # many users: only the address limit applies

    with _from("127.0.0.3", own_server) as attacker:
        statuses = [attacker.post("/auth/login", json=wrong(i)).status_code for i in range(51)]
        assert statuses[:50] == [401] * 50 and statuses[50] == 429
        for expected_wait in (2, 4):  # each failure past the limit doubles the wait: 1 s, 2 s, then 4 s
            time.sleep(expected_wait / 2 + 0.1)
            assert attacker.post("/auth/login", json=wrong(expected_wait)).status_code == 401
            refused = attacker.post("/auth/login", json=wrong(expected_wait))
            assert refused.status_code == 429 and refused.headers["retry-after"] == str(expected_wait)
        blocked = attacker.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        basic = attacker.get("/v2/users/me", headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 4
    assert "too many failed logins" in blocked.json()["message"]
    assert basic.status_code == 429  # HTTP Basic shares the budget
    with _from("127.0.0.4", own_server) as someone_else:
        ok = someone_else.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert ok.status_code == 200  # only the address that failed is held back


def test_failed_logins_for_one_user_are_throttled_from_any_address(own_server: RunningServer) -> None:
    for i in range(20):
        with _from(f"127.0.1.{i + 1}", own_server) as spread:
            assert spread.post("/auth/login", json={"username": "admin", "password": "x"}).status_code == 401
    with _from("127.0.2.1", own_server) as fresh:
        locked = fresh.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        other = fresh.post("/auth/login", json={"username": "nobody", "password": "x"})
    assert locked.status_code == 429 and "retry-after" in locked.headers
    assert other.status_code == 401


def test_unknown_users_cost_a_password_check_like_known_ones(own_server: RunningServer) -> None:
    before = security._dummy_hash.cache_info()
    with own_server.client() as anonymous:
        response = anonymous.post("/auth/login", json={"username": "no-such-user", "password": "guess"})
    after = security._dummy_hash.cache_info()
    assert response.status_code == 401 and response.json()["message"] == "incorrect username or password"
    assert after.hits + after.misses == before.hits + before.misses + 1  # a dummy hash was verified
