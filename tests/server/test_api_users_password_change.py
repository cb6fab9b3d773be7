"""GPUStack's `require_password_change` on users: set by an admin, cleared by the user's own change."""

from collections.abc import Iterator

import httpx
import pytest

from tests.server.api_test_helpers import admin_client, unique
from tests.utils.server import RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def test_admin_can_require_a_password_change(server: RunningServer, api: httpx.Client) -> None:
    """GPUStack's `require_password_change`: set by the admin on create or update, cleared by the user's change."""
    name = unique("must-change")
    created = api.post("/v2/users", json={"username": name, "password": "given-pass", "require_password_change": True})
    assert created.status_code == 201 and created.json()["require_password_change"] is True
    with server.client(auth=(name, "given-pass")) as user:
        change = {"current_password": "given-pass", "new_password": "own-pass"}
        assert user.post("/v2/users/me/password", json=change).json()["require_password_change"] is False
    user_id = created.json()["id"]
    reset = api.put(f"/v2/users/{user_id}", json={"password": "reset-again", "require_password_change": True})
    assert reset.status_code == 200 and reset.json()["require_password_change"] is True
    kept = api.put(f"/v2/users/{user_id}", json={"full_name": "Kept"})  # left out: unchanged
    assert kept.json()["require_password_change"] is True
    assert (
        api.post("/v2/users", json={"username": unique("u"), "password": "pw-123456"}).json()["require_password_change"]
        is False
    )
