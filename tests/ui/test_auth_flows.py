"""The dashboard's sign-in, permissions and error handling in a real browser (the five defects of issue 13)."""

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.cluster import Cluster, wait_for
from tests.ui.conftest import HUB, NEW_PASSWORD, Tab, generated_password
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
USER, USER_PASSWORD = "alice", "alice-password"
CORS = {"access-control-allow-origin": "*"}


@pytest.fixture(scope="module")
def gpu_worker(fresh_cluster: Cluster, admin_password: str) -> str:
    """A second process: a worker with two simulated GPUs (an inventory file), ready before the tests use it."""
    inventory = fresh_cluster.root / "gpus.yaml"
    inventory.write_text('- {index: 0, name: "RTX 4090", memory_total: 24GiB}\n'
                         '- {index: 1, name: "RTX 4090", memory_total: 24GiB}\n')  # fmt: skip
    fresh_cluster.start_worker("gpu-box", 41360, ("--gpu-inventory", str(inventory)))
    with httpx.Client(base_url=fresh_cluster.url, auth=("admin", admin_password)) as admin:

        def ready() -> list[dict[str, object]]:
            return [w for w in admin.get("/v2/workers").json()["items"] if w["state"] == "ready"]

        wait_for(ready, 60, "the worker to be ready")
    return "gpu-box"


@pytest.fixture(scope="module")
def user(fresh_cluster: Cluster, admin_password: str) -> str:
    body = {"username": USER, "password": USER_PASSWORD}
    httpx.post(f"{fresh_cluster.url}/v2/users", json=body, auth=("admin", admin_password)).raise_for_status()
    return USER


def test_first_login_forces_the_generated_password_to_change(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab]
) -> None:
    tab = new_tab(fresh_cluster.url)
    tab.open()
    tab.shot("login")
    tab.sign_in("admin", generated_password(fresh_cluster))
    expect(tab.page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(tab.page.locator("nav")).to_have_count(0)
    tab.shot("password-change")
    tab.open("keys")  # a deep link does not get around it
    expect(tab.page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    tab.page.get_by_label("Current password").fill(generated_password(fresh_cluster))
    tab.page.get_by_label("New password").fill(NEW_PASSWORD)
    tab.page.get_by_role("button", name="Change password").click()
    expect(tab.page.locator("nav")).to_contain_text("Signed in as admin")
    me = httpx.get(f"{fresh_cluster.url}/v2/users/me", auth=("admin", NEW_PASSWORD)).json()
    assert me["require_password_change"] is False
    tab.sign_out()
    tab.sign_in("admin", NEW_PASSWORD)  # the next sign-in goes straight in
    expect(tab.page.get_by_role("heading", name="Overview")).to_be_visible()


def test_wrong_password_shows_the_servers_message(fresh_cluster: Cluster, new_tab: Callable[[str], Tab]) -> None:
    tab = new_tab(fresh_cluster.url)
    tab.open()
    tab.sign_in("admin", "not-the-password")
    expect(tab.page.locator("#login-error")).to_have_text("incorrect username or password")
    tab.shot("login-error")


def test_errors_stay_until_dismissed(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str, user: str
) -> None:
    tab = new_tab(fresh_cluster.url)
    tab.open("users")
    tab.sign_in("admin", admin_password)
    expect(tab.page.get_by_role("cell", name=user, exact=True)).to_be_visible()
    tab.shot("users")
    form = tab.page.locator("#user-form")
    form.get_by_label("Username").fill(user)
    form.get_by_label("Password", exact=True).fill("another-password")
    form.get_by_role("button", name="Create user").click()
    error = tab.page.locator("#errors .error-item")
    expect(error).to_contain_text(f"a user named '{user}' already exists")
    tab.page.wait_for_timeout(4_000)  # the old page cleared errors after 3 s
    expect(error).to_be_visible()
    error.get_by_role("button", name="Dismiss").click()
    expect(error).to_have_count(0)


def test_a_user_created_in_the_dashboard_chooses_their_own_password(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str
) -> None:
    tab = new_tab(fresh_cluster.url)
    page = tab.page
    tab.open("users")
    tab.sign_in("admin", admin_password)
    form = page.locator("#user-form")
    form.get_by_label("Username").fill("bob")
    form.get_by_label("Password", exact=True).fill("given-by-admin")
    expect(form.get_by_label("Must choose their own password at first sign-in")).to_be_checked()
    form.get_by_role("button", name="Create user").click()
    expect(page.locator("#users tr", has_text="bob")).to_contain_text("must change password")
    tab.sign_out()
    tab.sign_in("bob", "given-by-admin")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("Current password").fill("given-by-admin")
    page.get_by_label("New password").fill("bobs-own-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("nav")).to_contain_text("Signed in as bob")
    expect(page.locator("nav").get_by_role("link", name="Users")).to_have_count(0)


def test_non_admin_sees_no_admin_controls_and_failures_are_shown(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str, user: str, gpu_worker: str
) -> None:
    model = {"name": "visible-model", "source": "local_path", "local_path": "/models/none.gguf", "replicas": 1}
    httpx.post(f"{fresh_cluster.url}/v2/models", json=model, auth=("admin", admin_password)).raise_for_status()
    tab = new_tab(fresh_cluster.url)
    tab.open("deployments")
    tab.sign_in(user, USER_PASSWORD)
    page = tab.page
    expect(page.get_by_text("visible-model", exact=True)).to_be_visible()
    for admin_only in ("Deploy a model", "Users"):
        expect(page.locator("nav").get_by_role("link", name=admin_only)).to_have_count(0)
    for control in ("Scale", "Delete", "Stop", "Logs"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    tab.shot("deployments-non-admin")
    tab.open("resources")
    expect(page.locator("#workers")).to_contain_text(gpu_worker)
    for control in ("Delete", "Edit labels", "Maintenance"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    tab.open("overview")
    expect(page.locator("#counts")).to_contain_text("1 / 1 ready")  # the live lists a user may read
    tab.open("usage")
    expect(page.get_by_label("Group by").locator("option[value=user]")).to_have_count(0)  # own usage only
    expect(page.locator("#usage-out")).to_contain_text("No requests metered")
    expect(page.locator("#errors .error-item")).to_have_count(0)
    tab.open("users")
    expect(page.get_by_text("This page is for administrators")).to_be_visible()
    tab.open("profile")
    page.get_by_label("Current password").fill("wrong-current-password")
    page.get_by_label("New password").fill("whatever-new")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#errors .error-item")).to_contain_text("current password")
    tab.shot("profile-error")


def test_signing_out_leaves_nothing_for_the_next_user(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str, user: str
) -> None:
    tab = new_tab(fresh_cluster.url)
    page = tab.page
    tab.open("keys")
    tab.sign_in("admin", admin_password)
    shown_once = _create_key(page, "admin-done-key")
    page.get_by_role("button", name="Done").click()  # shown once: gone from the page after Done
    expect(page.locator("#new-key")).to_have_count(0)
    assert shown_once not in page.content()
    secret = _create_key(page, "admin-secret-key")
    tab.shot("keys-secret-shown-once")
    tab.sign_out()
    tab.sign_in(user, USER_PASSWORD)
    tab.open("keys")
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    for leaked in (secret, shown_once, "admin-secret-key"):
        assert leaked not in page.content()
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0


def _create_key(page: Page, name: str) -> str:
    form = page.locator("#key-form")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key code")
    expect(secret).to_have_text(re.compile(r"\S{16,}"))
    return secret.inner_text()


def test_gpus_maintenance_and_the_deploy_forms_fit_check(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str, gpu_worker: str, tmp_path: Path
) -> None:
    tab = new_tab(fresh_cluster.url)
    page = tab.page
    tab.open("resources")
    tab.sign_in("admin", admin_password)
    workers = page.locator("#workers")
    expect(workers).to_contain_text("simulated")
    expect(workers.locator(".gpu")).to_have_count(2)
    expect(page.locator("#gpus tr")).to_have_count(3)  # header + two GPUs
    tab.shot("resources-gpus")
    tab.open("deploy")
    form = page.locator("#deploy-form")
    form.get_by_label("Name", exact=True).fill("pinned")
    form.get_by_label("Local path (on the workers)").fill(str(write_tiny_gguf(tmp_path / "tiny.gguf")))
    form.locator("select[name=backend]").select_option("vllm")  # its catalog versions are offered
    expect(page.locator("#backend-versions option")).not_to_have_count(0)
    expect(page.locator("#backend-hint")).to_contain_text("vLLM flags")
    form.locator("select[name=backend]").select_option("")
    form.get_by_label(f"{gpu_worker} GPU 1").check()  # manual GPU selection
    expect(page.locator("#fit")).to_contain_text(f"Fits on {gpu_worker} GPUs 1 ")
    form.get_by_label("Worker label selector").fill("zone=nowhere")
    expect(page.locator("#fit")).to_contain_text("Does not fit")
    tab.shot("deploy-refused")
    tab.open("resources")
    page.once("dialog", lambda dialog: dialog.accept("new fans"))
    page.get_by_role("button", name="Maintenance", exact=True).click()
    expect(page.locator("#workers .badge", has_text="maintenance")).to_be_visible()
    expect(page.locator("#workers")).to_contain_text("new fans")
    tab.open("deploy")
    form.get_by_label("Name", exact=True).fill("pinned")
    form.get_by_label("Local path (on the workers)").fill(str(tmp_path / "tiny.gguf"))
    expect(page.locator("#fit")).to_contain_text(f"{gpu_worker}: worker is in maintenance (new fans)")
    tab.open("resources")
    page.get_by_role("button", name="End maintenance").click()
    expect(page.locator("#workers .badge", has_text="maintenance")).to_have_count(0)


def test_hub_search_suggests_repositories_and_files(
    fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str
) -> None:
    """No hub here: the browser's requests to it are answered at its network layer (first not at all, then with
    a search result and a repository's file list), as a reachable hub would."""
    tab = new_tab(fresh_cluster.url)
    page = tab.page
    page.route(f"{HUB}**", lambda route: route.abort("internetdisconnected"))
    tab.open("deploy")
    tab.sign_in("admin", admin_password)
    form = page.locator("#deploy-form")
    form.get_by_label("Source").select_option("huggingface")
    form.get_by_label("Repository (search the hub)").fill("qwen")
    expect(page.locator("#hub-note")).to_contain_text("does not answer this browser")
    page.unroute(f"{HUB}**")
    page.route(f"{HUB}api/models?search=**", lambda route: route.fulfill(json=[{"id": "Qwen/Tiny-GGUF"}], headers=CORS))
    files = {"siblings": [{"rfilename": "tiny-q4.gguf"}, {"rfilename": "README.md"}]}
    page.route(f"{HUB}api/models/Qwen/Tiny-GGUF", lambda route: route.fulfill(json=files, headers=CORS))
    form.get_by_label("Repository (search the hub)").fill("qwen2")
    expect(page.locator("#hub-repos option")).to_have_attribute("value", "Qwen/Tiny-GGUF")
    form.get_by_label("Repository (search the hub)").fill("Qwen/Tiny-GGUF")
    form.get_by_label("Repository (search the hub)").dispatch_event("change")
    expect(page.locator("#hub-files option")).to_have_count(1)
    expect(page.locator("#hub-files option")).to_have_attribute("value", "tiny-q4.gguf")
    expect(page.locator("#hub-note")).to_contain_text("1 GGUF files in Qwen/Tiny-GGUF")
