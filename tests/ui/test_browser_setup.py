"""Finding the browser: the system chromium, or a clear skip outside CI and a failure in CI."""

import pytest

from tests.ui.conftest import chromium_path


def test_a_named_browser_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSTACK_CHROMIUM", "/bin/sh")  # any executable
    assert chromium_path() == "/bin/sh"


def test_a_missing_browser_skips_outside_ci_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSTACK_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"not installed at /nonexistent/chromium.*\.ci/ensure-browser"):
        chromium_path()


def test_a_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSTACK_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium_path()
