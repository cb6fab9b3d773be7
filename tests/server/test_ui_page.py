"""The dashboard page is served at / without auth and drives the /v2 API."""

from tests.utils.server import RunningServer


def test_dashboard_is_served(server: RunningServer) -> None:
    with server.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>GPUStack</title>" in page.text
    for endpoint in ("/v2/workers", "/v2/models", "/v2/model-instances", "/auth/login", "simulated",
                     "require_password_change", "/v2/users/me/password", "/v2/gpu-history", "/v2/usage?group_by=model",
                     "/v2/usage/export", "application/x-www-form-urlencoded", "page=-1", "body.message"):  # fmt: skip
        assert endpoint in page.text
