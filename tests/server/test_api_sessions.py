"""Dashboard sessions over real HTTP: revoked server-side on logout and password changes, Secure over TLS."""

from collections.abc import Iterator

import httpx
import pytest

from tests.server.api_test_helpers import admin_client, create_user
from tests.utils.server import ADMIN_PASSWORD, RunningServer

SESSION_COOKIE = "gpustack_session"


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _login(server: RunningServer, username: str, password: str, **headers: str) -> httpx.Response:
    with server.client() as browser:
        response = browser.post("/auth/login", json={"username": username, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_logout_revokes_the_session_server_side(server: RunningServer) -> None:
    token = _login(server, "admin", ADMIN_PASSWORD).cookies[SESSION_COOKIE]
    with server.client(cookies={SESSION_COOKIE: token}) as browser:
        assert browser.get("/v2/users/me").status_code == 200
        assert browser.post("/auth/logout").status_code == 204
    with server.client(cookies={SESSION_COOKIE: token}) as replay:  # a copy of the cookie kept elsewhere
        assert replay.get("/v2/users/me").status_code == 401


def test_password_changes_end_every_session_of_the_user(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="first-pass")
    mine = _login(server, user["username"], "first-pass").cookies[SESSION_COOKIE]
    other = _login(server, user["username"], "first-pass").cookies[SESSION_COOKIE]
    with server.client(cookies={SESSION_COOKIE: mine}) as browser:
        body = {"current_password": "first-pass", "new_password": "second-pass"}
        assert browser.post("/v2/users/me/password", json=body).status_code == 200
    for token in (mine, other):
        with server.client(cookies={SESSION_COOKIE: token}) as stale:
            assert stale.get("/v2/users/me").status_code == 401
    fresh = _login(server, user["username"], "second-pass").cookies[SESSION_COOKIE]
    assert api.put(f"/v2/users/{user['id']}", json={"password": "third-pass"}).status_code == 200  # by an admin
    with server.client(cookies={SESSION_COOKIE: fresh}) as stale:
        assert stale.get("/v2/users/me").status_code == 401


def test_the_session_cookie_is_secure_when_served_over_tls(server: RunningServer) -> None:
    plain = _login(server, "admin", ADMIN_PASSWORD).headers["set-cookie"].lower()
    # uvicorn takes the scheme from a TLS-terminating proxy on loopback (X-Forwarded-Proto)
    tls = _login(server, "admin", ADMIN_PASSWORD, **{"x-forwarded-proto": "https"}).headers["set-cookie"].lower()
    assert "secure" not in [part.strip() for part in plain.split(";")]
    assert "secure" in [part.strip() for part in tls.split(";")]
