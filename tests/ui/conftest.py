"""Browser fixtures: Debian's chromium driven by Playwright, one real server per module, screenshots as artifacts.

Chromium comes from the system (`.ci/ensure-browser` installs it in CI); without it these tests skip outside CI
and fail in CI (`CI=true`), so a CI run never passes by skipping them.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.cluster import Cluster

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

sync_api.expect.set_options(timeout=15_000)  # assertions retry this long: CI machines are shared and slow
VIEWPORT = {"width": 1440, "height": 900}
ARTIFACTS = Path(os.environ.get("GPUSTACK_UI_ARTIFACTS", "build/ui-screenshots"))
# Chromium reports every non-2xx answer as a console error; the pages expect some (a wrong password's 401).
# Those are checked as responses instead (no 5xx); every other console error fails the test.
NEW_PASSWORD = "admin-chosen-password"
HUB = "https://huggingface.co/"
_NETWORK_STATUS = "Failed to load resource: the server responded with a status of 4"


def chromium_path() -> str:
    """GPUSTACK_CHROMIUM, else `chromium` on PATH; missing: a skip with the fix, or a failure in CI."""
    named = os.environ.get("GPUSTACK_CHROMIUM")
    found = named if named and os.access(named, os.X_OK) else None if named else shutil.which("chromium")
    if found:
        return found
    reason = f"chromium is not installed{f' at {named}' if named else ''}: run `bash .ci/ensure-browser`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    """Per module: Playwright's sync API keeps its event loop running while open, which async tests elsewhere
    in the session cannot share."""
    executable = chromium_path()
    with sync_api.sync_playwright() as pw:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses root without it
        browser = pw.chromium.launch(executable_path=executable, args=args)
        yield browser
        browser.close()


@dataclass
class Tab:
    """One browser tab with what went wrong in it: console errors, uncaught exceptions, 5xx answers."""

    page: "sync_api.Page"
    url: str
    problems: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.url}/#/{route}" if route else self.url)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def sign_in(self, username: str, password: str) -> None:
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.page.get_by_role("button", name="Sign in").wait_for()


def _watch(tab: Tab) -> None:
    def console(msg: "sync_api.ConsoleMessage") -> None:
        outside = msg.location.get("url", "").startswith(HUB)  # the hub may be unreachable: the page says so
        if msg.type == "error" and not msg.text.startswith(_NETWORK_STATUS) and not outside:
            tab.problems.append(f"console: {msg.text}")

    tab.page.on("console", console)
    tab.page.on("pageerror", lambda exc: tab.problems.append(f"uncaught: {exc}"))
    tab.page.on("response", lambda r: r.status >= 500 and tab.problems.append(f"{r.status} from {r.url}"))


_OPEN_TABS: list[Tab] = []


@pytest.fixture(scope="module")
def new_tab(browser: "sync_api.Browser") -> Iterator[Callable[[str], Tab]]:
    """Opens tabs (each its own cookie jar) on a server URL; they close with the module."""
    contexts: list[sync_api.BrowserContext] = []

    def open_tab(url: str) -> Tab:
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.set_default_timeout(20_000)
        tab = Tab(context.new_page(), url)
        _watch(tab)
        contexts.append(context)
        _OPEN_TABS.append(tab)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    _OPEN_TABS.clear()


@pytest.fixture(autouse=True)
def no_console_errors() -> Iterator[None]:
    """Each test fails on what its tabs logged: console errors, uncaught exceptions, 5xx answers."""
    yield
    problems = [p for tab in _OPEN_TABS for p in tab.problems]
    for tab in _OPEN_TABS:
        tab.problems.clear()
    assert not problems, "the dashboard logged errors:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A first install: the admin password generated into the data dir (`initial_admin_password`)."""
    chromium_path()  # no server start when the browser is missing
    embedded = bool(getattr(request.module, "EMBEDDED_WORKER", False))
    cluster = Cluster(tmp_path_factory.mktemp("ui"))
    cluster.env["GPUSTACK_GPU_HISTORY_INTERVAL_SECONDS"] = "1"  # the overview's charts fill within seconds
    cluster.start_server(embedded_worker=embedded, bootstrap_password=None)
    try:
        yield cluster
    finally:
        cluster.shutdown()


def generated_password(cluster: Cluster) -> str:
    return (cluster.root / "server" / "initial_admin_password").read_text().strip()


@pytest.fixture(scope="module")
def admin_password(fresh_cluster: Cluster) -> str:
    """The admin's own password: chosen in the browser by a first-login test, or set here through the API."""
    if httpx.get(f"{fresh_cluster.url}/v2/users/me", auth=("admin", NEW_PASSWORD)).status_code != 200:
        body = {"current_password": generated_password(fresh_cluster), "new_password": NEW_PASSWORD}
        auth = ("admin", body["current_password"])
        httpx.post(f"{fresh_cluster.url}/v2/users/me/password", json=body, auth=auth).raise_for_status()
    return NEW_PASSWORD
