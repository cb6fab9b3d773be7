"""GPUStack's ways to authenticate: the X-API-Key header and /auth/update-password."""

from collections.abc import Iterator

import httpx
import pytest

from tests.server.api_test_helpers import admin_client, admin_key, create_user
from tests.utils.server import RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def test_gpustack_api_key_header_is_accepted(server: RunningServer) -> None:
    """GPUStack's clients may send the key as `X-API-Key` instead of `Authorization: Bearer`."""
    with server.client(headers={"X-API-Key": admin_key(server)}) as client:
        me = client.get("/v2/users/me")
    assert me.status_code == 200 and me.json()["username"] == "admin"
    with server.client(headers={"X-API-Key": "gpustack_not_a_key"}) as client:
        assert client.get("/v2/users/me").status_code == 401


def test_gpustack_update_password_path(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="before-password-1")
    body = {"current_password": "before-password-1", "new_password": "after-password-1"}
    with server.client(auth=(user["username"], "before-password-1")) as client:
        assert client.post("/auth/update-password", json=body).status_code == 200
    with server.client(auth=(user["username"], "after-password-1")) as client:
        assert client.get("/v2/users/me").json()["username"] == user["username"]


def test_put_me_updates_the_full_name_not_the_password(server: RunningServer, api: httpx.Client) -> None:
    user = create_user(api, password="self-password-1")
    with server.client(auth=(user["username"], "self-password-1")) as client:
        renamed = client.put("/v2/users/me", json={"full_name": "Self Named", "avatar_url": None, "password": None})
        assert renamed.status_code == 200 and renamed.json()["full_name"] == "Self Named"
        refused = client.put("/v2/users/me", json={"full_name": "x", "password": "new-password-1"})
        assert refused.status_code == 400 and "/auth/update-password" in refused.json()["message"]
        assert client.get("/v2/users/me").json()["full_name"] == "Self Named"  # the refused call changed nothing
