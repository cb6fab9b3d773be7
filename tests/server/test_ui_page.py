"""The dashboard is served at / without auth: its page, its ES modules and stylesheet, nothing outside gpustack/ui."""

import glob
import gzip
import tomllib
from pathlib import Path

from gpustack.server.routers.ui import UI_DIR
from tests.utils.server import RunningServer

PAGES = ("overview", "resources", "deployments", "deploy", "playground", "keys", "users", "usage", "profile")


def test_dashboard_page_and_assets_are_served(server: RunningServer) -> None:
    with server.client() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<title>GPUStack</title>" in page.text and '<script type="module" src="/ui/app.js">' in page.text
        policy = page.headers["content-security-policy"]  # its own scripts only, never framed
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
        for path, media in [("app.js", "text/javascript"), ("lib.js", "text/javascript"), ("style.css", "text/css")]:
            asset = client.get(f"/ui/{path}")
            assert asset.status_code == 200, path
            assert asset.headers["content-type"].startswith(media)
        for name in PAGES:
            assert client.get(f"/ui/pages/{name}.js").status_code == 200, name


def test_nothing_outside_the_ui_folder_is_served(server: RunningServer) -> None:
    with server.client() as client:
        for path in ("/ui/../server/app.py", "/ui/%2e%2e/server/app.py", "/ui/pages/../../cli.py", "/ui/missing.js",
                     "/ui/pages", "/ui/index.htm"):  # fmt: skip
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["message"]


def test_assets_stay_small() -> None:
    """The page and every asset it may load, gzipped, stay under 300 KB (fast first paint, no bundler)."""
    files = [p for p in UI_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 4 + len(PAGES)
    total = sum(len(gzip.compress(p.read_bytes())) for p in files)
    assert total < 300 * 1024, f"{total} bytes gzipped"


def test_live_pages_use_the_watch_streams() -> None:
    """The live views read `?watch=true` streams (GPUStack's blank-line framing), never a polling timer."""
    lib = (UI_DIR / "lib.js").read_text()
    assert "watch=true" in lib and '"\\n\\n"' in lib
    for name in ("deployments", "resources", "overview"):
        source = (UI_DIR / "pages" / f"{name}.js").read_text()
        assert "live(" in source and "setInterval" not in source, name


def test_every_asset_is_package_data() -> None:
    """A wheel (and the Docker image, built from one) carries every file the dashboard loads."""
    pyproject = tomllib.loads((UI_DIR.parents[1] / "pyproject.toml").read_text())
    package = UI_DIR.parent
    globs = pyproject["tool"]["setuptools"]["package-data"]["gpustack"]
    shipped = {Path(p) for g in globs for p in glob.glob(str(package / g))}
    assert {p for p in UI_DIR.rglob("*") if p.is_file()} <= shipped
