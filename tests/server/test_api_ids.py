"""Ids are never reused after a delete (SQLite too), so watchers and workers cannot confuse two rows."""

from tests.server.api_test_helpers import admin_client, create_model
from tests.utils.server import RunningServer


def test_deleted_ids_are_not_handed_out_again(server: RunningServer) -> None:
    with admin_client(server) as api:
        first = create_model(api)
        assert api.delete(f"/v2/models/{first['id']}").status_code == 204
        second = create_model(api)
    assert second["id"] > first["id"]
