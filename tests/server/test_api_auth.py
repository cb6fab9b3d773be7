"""Authentication and users over real HTTP: session cookie, Basic, API keys, roles, passwords."""

import base64
import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import SQLModel

from gpustack.schemas import load_all
from gpustack.schemas.common import utcnow
from tests.server.api_test_helpers import (
    admin_client,
    bearer,
    client_with,
    create_model,
    create_user,
    sync_engine,
    unique,
)
from tests.utils.server import ADMIN_PASSWORD, RunningServer, run_server

SESSION_COOKIE = "gpustack_session"

load_all()
API_KEYS = SQLModel.metadata.tables["api_keys"]
USERS = SQLModel.metadata.tables["users"]


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _new_key(client: httpx.Client, **fields: object) -> dict[str, object]:
    """A key for the management API (these tests use keys on /v2)."""
    response = client.post("/v2/api-keys", json={"name": unique("key"), "scope": ["management"], **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_health_probes_need_no_credentials(server: RunningServer) -> None:
    with server.client() as anonymous:
        health = anonymous.get("/healthz")
        ready = anonymous.get("/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_login_sets_an_httponly_session_cookie_that_authenticates(server: RunningServer) -> None:
    with server.client() as browser:
        response = browser.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["username"] == "admin" and body["is_admin"] is True
        assert "hashed_password" not in body and "password" not in body

        set_cookie = response.headers["set-cookie"]
        assert set_cookie.startswith(f"{SESSION_COOKIE}=")
        attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attributes
        assert "samesite=lax" in set_cookie.lower()

        token = browser.cookies[SESSION_COOKIE]
        me = browser.get("/v2/users/me")
        assert me.status_code == 200 and me.json()["username"] == "admin"

    with server.client(cookies={SESSION_COOKIE: token}) as fresh:
        assert fresh.get("/v2/models").status_code == 200


def test_logout_clears_the_cookie(server: RunningServer) -> None:
    with server.client() as browser:
        assert browser.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200
        assert browser.get("/v2/users/me").status_code == 200
        response = browser.post("/auth/logout")
        assert response.status_code == 204
        set_cookie = response.headers["set-cookie"].lower()
        assert set_cookie.startswith(f"{SESSION_COOKIE}=") and ("max-age=0" in set_cookie or "expires=" in set_cookie)
        assert SESSION_COOKIE not in browser.cookies
        gone = browser.get("/v2/users/me")
        assert gone.status_code == 401
        assert gone.json()["message"] == "authentication required"


@pytest.mark.parametrize(
    "credentials",
    [("admin", "wrong-password"), ("no-such-user-xyz", ADMIN_PASSWORD), ("admin", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_bad_login_is_401_with_one_message(server: RunningServer, credentials: tuple[str, str]) -> None:
    with server.client() as browser:
        response = browser.post("/auth/login", json={"username": credentials[0], "password": credentials[1]})
        assert response.status_code == 401
        assert response.json()["message"] == "incorrect username or password"  # no user enumeration
        assert "set-cookie" not in response.headers
        assert browser.get("/v2/users/me").status_code == 401


def test_login_validates_its_body(server: RunningServer) -> None:
    with server.client() as browser:
        assert browser.post("/auth/login", json={"username": "admin"}).status_code == 422
        assert browser.post("/auth/login", content=b"not json").status_code == 422


@pytest.mark.parametrize("cookie", ["garbage", "!!!", base64.urlsafe_b64encode(b"1:99999999999:bad").decode(), ""])
def test_forged_or_malformed_session_cookie_is_401(server: RunningServer, cookie: str) -> None:
    with server.client(cookies={SESSION_COOKIE: cookie}) as forged:
        assert forged.get("/v2/users/me").status_code == 401


def test_basic_auth(server: RunningServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/v2/users/me", headers=_basic("admin", ADMIN_PASSWORD)).json()["username"] == "admin"
        wrong = anonymous.get("/v2/users/me", headers=_basic("admin", "nope"))
        assert wrong.status_code == 401 and wrong.json()["message"] == "incorrect username or password"
        for header in ("Basic %%%", "Basic " + base64.b64encode(b"\xff\xfe").decode(), "Basic", "Token abc", "abc"):
            response = anonymous.get("/v2/users/me", headers={"Authorization": header})
            assert response.status_code == 401, header


def test_api_key_is_shown_once_and_only_its_hash_is_stored(server: RunningServer, api: httpx.Client) -> None:
    created = _new_key(api, description="ci key")
    value = str(created["value"])
    prefix, access_key, secret = value.split("_")
    assert prefix == "gpustack" and created["access_key"] == access_key
    assert created["description"] == "ci key" and created["expires_at"] is None

    listed = api.get("/v2/api-keys", params={"page": -1}).json()["items"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1 and "value" not in mine[0]
    assert secret not in api.get("/v2/api-keys", params={"page": -1}).text

    with sync_engine(server).connect() as conn:
        row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == created["id"])).mappings().one()
    assert row["hashed_secret_key"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(v) and value != str(v) for v in row.values())

    with client_with(server, value) as keyed:
        assert keyed.get("/v2/users/me").json()["username"] == "admin"


def test_api_key_names_are_unique_per_user(server: RunningServer, api: httpx.Client) -> None:
    name = unique("dup-key")
    _new_key(api, name=name)
    again = api.post("/v2/api-keys", json={"name": name})
    assert again.status_code == 409 and name in again.json()["message"]
    user = create_user(api, password="pw-123456")
    with server.client(auth=(user["username"], "pw-123456")) as other:
        assert other.post("/v2/api-keys", json={"name": name}).status_code == 201  # another user may reuse it


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "k", "expires_in_seconds": 0}, {"name": "k", "expires_in_seconds": -5}, {}]
)
def test_api_key_create_validates(api: httpx.Client, body: dict[str, object]) -> None:
    assert api.post("/v2/api-keys", json=body).status_code == 422


def test_api_key_expiry(server: RunningServer, api: httpx.Client) -> None:
    created = _new_key(api, expires_in_seconds=3600)
    expires_at = datetime.fromisoformat(str(created["expires_at"]))
    assert abs(expires_at - (utcnow() + timedelta(hours=1))) < timedelta(seconds=30)
    with client_with(server, str(created["value"])) as keyed:
        assert keyed.get("/v2/users/me").status_code == 200
        # move the expiry into the past rather than sleeping through it
        with sync_engine(server).begin() as conn:
            conn.execute(
                update(API_KEYS)
                .where(API_KEYS.c.id == created["id"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        expired = keyed.get("/v2/users/me")
    assert expired.status_code == 401 and expired.json()["message"] == "API key has expired"


def test_deleted_api_key_no_longer_authenticates(server: RunningServer, api: httpx.Client) -> None:
    created = _new_key(api)
    with client_with(server, str(created["value"])) as keyed:
        assert keyed.get("/v2/models").status_code == 200
        assert api.delete(f"/v2/api-keys/{created['id']}").status_code == 204
        gone = keyed.get("/v2/models")
        assert gone.status_code == 401 and gone.json()["message"] == "invalid API key"
    assert api.delete(f"/v2/api-keys/{created['id']}").status_code == 404
    assert api.delete("/v2/api-keys/99999999999").status_code == 404


@pytest.mark.parametrize(
    "value",
    ["gpustack_x", "gpustack_deadbeefdeadbeef_00", "gpustack__", "nope", "gpustack_a_b_c", ""],
)
def test_malformed_or_unknown_bearer_is_401(server: RunningServer, value: str) -> None:
    with server.client(headers={"Authorization": f"Bearer {value}".strip()}) as client:
        assert client.get("/v2/models").status_code == 401


def test_a_right_access_key_with_a_wrong_secret_is_401(server: RunningServer, api: httpx.Client) -> None:
    created = _new_key(api)
    with client_with(server, f"gpustack_{created['access_key']}_{'0' * 48}") as forged:
        response = forged.get("/v2/models")
    assert response.status_code == 401 and response.json()["message"] == "invalid API key"


def test_keys_are_private_to_their_owner(server: RunningServer, api: httpx.Client) -> None:
    admin_key = _new_key(api)
    user = create_user(api, password="pw-123456")
    with server.client(auth=(user["username"], "pw-123456")) as other:
        own = _new_key(other)
        listed = other.get("/v2/api-keys").json()
        assert [k["id"] for k in listed["items"]] == [own["id"]]
        assert listed["items"][0]["user_id"] == user["id"]
        hidden = other.delete(f"/v2/api-keys/{admin_key['id']}")
        assert hidden.status_code == 404  # not 403: other users' keys are not revealed
    assert admin_key["id"] in {k["id"] for k in api.get("/v2/api-keys", params={"page": -1}).json()["items"]}
    # an admin may revoke any user's key
    assert api.delete(f"/v2/api-keys/{own['id']}").status_code == 204


def test_non_admin_can_read_but_not_manage(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="pw-123456", full_name="Regular User")
    assert user["is_admin"] is False and user["full_name"] == "Regular User"
    assert "hashed_password" not in user and "password" not in user
    model = create_model(api)
    with server.client(auth=(user["username"], "pw-123456")) as regular:
        assert regular.get("/v2/models").status_code == 200
        assert regular.get(f"/v2/models/{model['id']}").json()["name"] == model["name"]
        assert regular.get("/v2/workers").status_code == 200
        me = regular.get("/v2/users/me").json()
        assert me["username"] == user["username"] and me["is_admin"] is False

        denied = [
            regular.post("/v2/models", json={"name": unique("m"), "local_path": "/x"}),
            regular.put(f"/v2/models/{model['id']}", json={"name": model["name"], "local_path": "/x"}),
            regular.patch(f"/v2/models/{model['id']}", json={"replicas": 0}),
            regular.delete(f"/v2/models/{model['id']}"),
            regular.get("/v2/users"),
            regular.post("/v2/users", json={"username": unique("u"), "password": "pw-123456"}),
            regular.get(f"/v2/users/{user['id']}"),
            regular.put(f"/v2/users/{user['id']}", json={"is_admin": True}),
            regular.delete(f"/v2/users/{user['id']}"),
            regular.get("/v2/model-files"),
        ]
        for response in denied:
            assert response.status_code == 403, (response.request.method, response.request.url, response.text)
            assert response.json()["message"] == "admin rights required"
    assert api.get(f"/v2/models/{model['id']}").json()["replicas"] == model["replicas"]
    assert api.get(f"/v2/users/{user['id']}").json()["is_admin"] is False


def test_user_create_validates_and_conflicts(api: httpx.Client) -> None:
    user = create_user(api)
    clash = api.post("/v2/users", json={"username": user["username"], "password": "pw-123456"})
    assert clash.status_code == 409 and user["username"] in clash.json()["message"]
    for body in (
        {"username": unique("u"), "password": "short"},
        {"username": "has space", "password": "pw-123456"},
        {"username": "", "password": "pw-123456"},
        {"username": unique("u")},
    ):
        assert api.post("/v2/users", json=body).status_code == 422, body


def test_users_list_get_search(api: httpx.Client) -> None:
    token = unique("find")
    users = [create_user(api, username=f"{token}-{i}") for i in range(3)]
    found = api.get("/v2/users", params={"search": token, "perPage": 2}).json()
    assert found["pagination"]["total"] == 3 and found["pagination"]["totalPage"] == 2
    assert [u["id"] for u in found["items"]] == [users[2]["id"], users[1]["id"]]  # newest first
    assert api.get("/v2/users", params={"search": f"{token}%"}).json()["pagination"]["total"] == 0
    assert api.get(f"/v2/users/{users[0]['id']}").json()["username"] == f"{token}-0"
    missing = api.get("/v2/users/2147483647")
    assert missing.status_code == 404 and missing.json()["message"] == "user 2147483647 not found"


def test_password_change(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="first-pass")
    with server.client(auth=(user["username"], "first-pass")) as regular:
        wrong = regular.post("/v2/users/me/password", json={"current_password": "nope", "new_password": "second-pass"})
        assert wrong.status_code == 400 and wrong.json()["message"] == "current password is incorrect"
        short = regular.post("/v2/users/me/password", json={"current_password": "first-pass", "new_password": "x"})
        assert short.status_code == 422
        ok = regular.post(
            "/v2/users/me/password", json={"current_password": "first-pass", "new_password": "second-pass"}
        )
        assert ok.status_code == 200 and ok.json()["require_password_change"] is False
    with server.client() as anonymous:
        assert anonymous.get("/v2/users/me", headers=_basic(user["username"], "first-pass")).status_code == 401
        assert anonymous.get("/v2/users/me", headers=_basic(user["username"], "second-pass")).status_code == 200
        with sync_engine(server).connect() as conn:
            stored = conn.execute(select(USERS.c.hashed_password).where(USERS.c.id == user["id"]))
            hashed = stored.scalar_one()
        assert "second-pass" not in hashed and hashed.startswith("scrypt$")


def test_admin_updates_users(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="pw-123456")
    renamed = api.put(f"/v2/users/{user['id']}", json={"full_name": "New Name"})
    assert renamed.status_code == 200 and renamed.json()["full_name"] == "New Name"
    assert renamed.json()["is_admin"] is False
    assert api.put(f"/v2/users/{user['id']}", json={"password": "reset-pass"}).status_code == 200
    with server.client() as anonymous:
        assert anonymous.get("/v2/users/me", headers=_basic(user["username"], "reset-pass")).status_code == 200
    assert api.put(f"/v2/users/{user['id']}", json={"password": "x"}).status_code == 422
    assert api.put("/v2/users/2147483647", json={"full_name": "x"}).status_code == 404

    promoted = api.put(f"/v2/users/{user['id']}", json={"is_admin": True})
    try:
        assert promoted.status_code == 200 and promoted.json()["is_admin"] is True
        with server.client(auth=(user["username"], "reset-pass")) as now_admin:
            created = now_admin.post("/v2/models", json={"name": unique("m"), "local_path": "/x"})
            assert created.status_code == 201
    finally:
        demoted = api.put(f"/v2/users/{user['id']}", json={"is_admin": False})
    assert demoted.status_code == 200 and demoted.json()["is_admin"] is False


def test_deleting_a_user_revokes_their_key_and_session(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="pw-123456")
    with server.client() as browser:
        assert browser.post("/auth/login", json={"username": user["username"], "password": "pw-123456"}).is_success
        with server.client(auth=(user["username"], "pw-123456")) as regular:
            key = _new_key(regular)
        assert api.delete(f"/v2/users/{user['id']}").status_code == 204
        assert browser.get("/v2/users/me").status_code == 401
    with client_with(server, str(key["value"])) as keyed:
        assert keyed.get("/v2/users/me").status_code == 401
    assert api.get(f"/v2/users/{user['id']}").status_code == 404
    assert api.delete(f"/v2/users/{user['id']}").status_code == 404
    with sync_engine(server).connect() as conn:  # the key row went with its user (ON DELETE CASCADE)
        assert conn.execute(select(API_KEYS.c.id).where(API_KEYS.c.id == key["id"])).all() == []


def test_an_admin_cannot_delete_themself(api: httpx.Client) -> None:
    me = api.get("/v2/users/me").json()
    response = api.delete(f"/v2/users/{me['id']}")
    assert response.status_code == 400 and response.json()["message"] == "you cannot delete yourself"
    assert api.get("/v2/users/me").status_code == 200


@pytest.fixture(scope="module")
def lone_admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A private SQLite server whose only admin is `admin` (the shared servers may have more by now)."""
    tmp = tmp_path_factory.mktemp("lone-admin")
    with run_server(tmp / "data", f"sqlite:///{tmp / 'lone.db'}") as running:
        yield running


def test_the_last_admin_keeps_admin_rights(lone_admin_server: RunningServer) -> None:
    with lone_admin_server.admin() as admin:
        me = admin.get("/v2/users/me").json()
        admins = [u for u in admin.get("/v2/users").json()["items"] if u["is_admin"]]
        assert [u["id"] for u in admins] == [me["id"]]

        refused = admin.put(f"/v2/users/{me['id']}", json={"is_admin": False})
        assert refused.status_code == 400
        assert refused.json()["message"] == "cannot remove admin rights from the last admin"
        assert admin.delete(f"/v2/users/{me['id']}").status_code == 400
        assert admin.get("/v2/users/me").json()["is_admin"] is True

        # with a second admin, the first may step down and the second can then delete it
        second = admin.post("/v2/users", json={"username": "second-admin", "password": "pw-123456", "is_admin": True})
        assert second.status_code == 201
        assert admin.put(f"/v2/users/{me['id']}", json={"is_admin": False}).json()["is_admin"] is False
        assert admin.get("/v2/users").status_code == 403
    with lone_admin_server.client(auth=("second-admin", "pw-123456")) as other:
        assert other.delete(f"/v2/users/{me['id']}").status_code == 204
        last = other.put(f"/v2/users/{second.json()['id']}", json={"is_admin": False})
        assert last.status_code == 400


def test_bearer_and_basic_headers_win_over_a_valid_cookie(server: RunningServer) -> None:
    with server.client() as browser:
        assert browser.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).is_success
        assert browser.get("/v2/users/me", headers=bearer("gpustack_bad_key")).status_code == 401
        assert browser.get("/v2/users/me").status_code == 200


def test_new_api_keys_are_for_inference_only_unless_asked(server: RunningServer, api: httpx.Client) -> None:
    default = api.post("/v2/api-keys", json={"name": unique("key")})
    assert default.status_code == 201 and default.json()["scope"] == ["inference"]
    with client_with(server, default.json()["value"]) as keyed:
        refused = keyed.get("/v2/models")
        assert refused.status_code == 403 and "'management' scope" in refused.json()["message"]
        assert keyed.post("/v2/models", json={"name": unique("m"), "local_path": "/x"}).status_code == 403
    both = _new_key(api, scope=["inference", "management"])
    assert both["scope"] == ["inference", "management"]
    with client_with(server, str(both["value"])) as keyed:
        assert keyed.get("/v2/models").status_code == 200
    listed = {k["id"]: k["scope"] for k in api.get("/v2/api-keys", params={"page": -1}).json()["items"]}
    assert listed[default.json()["id"]] == ["inference"]
    assert _new_key(api, scope=["*"])["scope"] == ["inference", "management"]  # GPUStack's wildcard


@pytest.mark.parametrize("scope", [[], ["admin"], "management"], ids=["empty", "unknown", "not-a-list"])
def test_bad_api_key_scopes_are_422(api: httpx.Client, scope: object) -> None:
    assert api.post("/v2/api-keys", json={"name": unique("key"), "scope": scope}).status_code == 422
