"""Deploying, watching, chatting with, scaling and deleting the tiny GGUF from the dashboard, in a real browser.

One server with an embedded worker serves a generated tiny GGUF through the real llama.cpp engine; the tests
run in order on one tab and save a screenshot of every page.
"""

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.e2e.cluster import Cluster, wait_for
from tests.ui.conftest import Tab
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")
EMBEDDED_WORKER = True
RUNNING_TIMEOUT_MS = 180_000
MEDIA_ENGINE = Path(__file__).with_name("media_engine.py")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture(scope="module")
def admin_tab(fresh_cluster: Cluster, new_tab: Callable[[str], Tab], admin_password: str) -> Iterator[Tab]:
    tab = new_tab(fresh_cluster.url)
    tab.open()
    tab.sign_in("admin", admin_password)
    expect(tab.page.get_by_role("heading", name="Overview")).to_be_visible()
    tab.page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    yield tab


def test_deploy_from_the_form_and_watch_it_run(admin_tab: Tab, tiny: Path) -> None:
    page = admin_tab.page
    watched: list[str] = []
    page.on("request", lambda r: "watch=true" in r.url and watched.append(r.url))
    admin_tab.open("deploy")
    form = page.locator("#deploy-form")
    form.get_by_label("Name", exact=True).fill("tiny")
    form.get_by_label("Local path (on the workers)").fill(str(tiny))
    expect(page.locator("#fit")).to_contain_text("Fits on", timeout=30_000)  # the dry-run evaluation
    expect(page.locator("#fit")).to_contain_text("llama-box")
    admin_tab.shot("deploy")
    form.get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
    running = page.locator("tr[data-instance] .badge.running")
    expect(running).to_have_count(1, timeout=RUNNING_TIMEOUT_MS)
    expect(page.locator("tr[data-model]")).to_contain_text("1 / 1")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    for stream in ("/v2/models?watch=true", "/v2/model-instances?watch=true"):  # live, not polled
        assert any(stream in url for url in watched), stream
    admin_tab.shot("deployments")


def test_instance_logs_open_and_follow(admin_tab: Tab) -> None:
    page = admin_tab.page
    page.get_by_role("button", name="Logs").first.click()
    expect(page.locator("#log-text")).to_contain_text("llama", timeout=30_000)
    expect(page.get_by_role("link", name="Download")).to_have_attribute("href", re.compile(r"logs\?tail="))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename.endswith(".log")
    assert "llama" in Path(download.value.path()).read_text()
    admin_tab.shot("logs")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#log-text")).to_have_count(0)


def test_playground_streams_an_answer(admin_tab: Tab) -> None:
    page = admin_tab.page
    admin_tab.open("playground")
    page.get_by_label("Max tokens").fill("12")
    page.get_by_placeholder("Ask something").fill("hello")
    with page.expect_response("**/v1/chat/completions") as answer:
        page.get_by_role("button", name="Send").click()
    assert answer.value.headers["content-type"].startswith("text/event-stream")
    reply = page.locator("#chat-a .assistant")
    expect(reply).to_have_attribute("data-done", "true", timeout=60_000)
    assert int(reply.get_attribute("data-chunks") or 0) >= 2, "the answer must arrive in several chunks"
    page.get_by_label("Compare with").select_option("tiny")  # side by side: both answers stream
    page.get_by_placeholder("Ask something").fill("and again")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-b .assistant")).to_have_attribute("data-done", "true", timeout=60_000)
    expect(page.locator("#chat-a .assistant[data-done=true]")).to_have_count(2, timeout=60_000)
    page.get_by_role("button", name="View code").click()
    expect(page.locator("#code")).to_contain_text("/v1/chat/completions")
    admin_tab.shot("playground")


def test_playground_embeddings_compare_texts(admin_tab: Tab) -> None:
    page = admin_tab.page
    page.get_by_role("button", name="Embeddings").click()
    page.get_by_role("button", name="Compare").click()
    table = page.locator("#embed-out table")
    expect(table).to_contain_text("Cosine similarity")
    expect(table.locator("tr").nth(1).locator("td").nth(1)).to_have_text("1.000")  # a text is itself


def test_speech_and_image_tabs_appear_for_such_models(
    admin_tab: Tab, fresh_cluster: Cluster, admin_password: str, tiny: Path
) -> None:
    """A `custom` backend model (a stand-in engine: no speech or image engine runs here) of those categories."""
    command = f"{sys.executable} {MEDIA_ENGINE} {{{{host}}}} {{{{port}}}} {{{{model_name}}}}"
    model = {"name": "media", "local_path": str(tiny), "backend": "custom", "run_command": command,
             "categories": ["text_to_speech", "speech_to_text", "image", "reranker"]}  # fmt: skip
    with httpx.Client(base_url=fresh_cluster.url, auth=("admin", admin_password), timeout=30) as admin:
        created = admin.post("/v2/models", json=model)
        assert created.status_code == 201, created.text
        model_id = created.json()["id"]
        wait_for(lambda: admin.get(f"/v2/models/{model_id}").json()["ready_replicas"] == 1, 120, "the media model")
    page = admin_tab.page
    admin_tab.open("deployments")
    admin_tab.open("playground")
    page.get_by_role("button", name="Text to speech").click()
    page.get_by_role("button", name="Speak").click()
    expect(page.locator("#speech-out audio")).to_have_attribute("src", re.compile(r"^blob:"))
    page.get_by_role("button", name="Speech to text").click()
    page.get_by_label("Audio file").set_input_files(
        files=[{"name": "a.wav", "mimeType": "audio/wav", "buffer": b"RIFF1234"}]
    )
    page.get_by_role("button", name="Transcribe").click()
    expect(page.locator("#transcribe-out")).to_have_text("hello from the stand-in engine (8 bytes)")
    page.get_by_role("button", name="Image").click()
    page.get_by_role("button", name="Generate").click()
    image = page.locator("#image-out img")
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert page.evaluate("document.querySelector('#image-out img').naturalWidth") == 8  # the PNG decoded
    admin_tab.shot("playground-image")
    page.get_by_role("button", name="Rerank", exact=True).click()
    rerank = page.locator("#rerank-form")
    rerank.get_by_label("Model").select_option("media")
    rerank.get_by_role("button", name="Rerank").click()
    first = page.locator("#rerank-out tr").nth(1)  # best first: the document sharing words with the query
    expect(first).to_contain_text("Cats enjoy sleeping in the sun.")
    with httpx.Client(base_url=fresh_cluster.url, auth=("admin", admin_password), timeout=30) as admin:
        assert admin.delete(f"/v2/models/{model_id}").status_code == 204


def test_api_key_works_with_the_openai_client(admin_tab: Tab, fresh_cluster: Cluster) -> None:
    page = admin_tab.page
    admin_tab.open("keys")
    page.locator("#key-form").get_by_label("Name", exact=True).fill("from-the-dashboard")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key code").inner_text()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("async (key) => (await navigator.clipboard.readText()) === key", arg=secret)
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#new-key")).to_have_count(0)
    client = openai.OpenAI(base_url=f"{fresh_cluster.url}/v1", api_key=secret, max_retries=0, timeout=60)
    chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert chat.usage is not None and chat.usage.completion_tokens > 0
    admin_tab.shot("keys")


def test_deleting_a_key_in_the_dashboard_revokes_it(admin_tab: Tab, fresh_cluster: Cluster) -> None:
    page = admin_tab.page
    page.locator("#key-form").get_by_label("Name", exact=True).fill("short-lived")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key code").inner_text()
    page.get_by_role("button", name="Done").click()
    row = page.locator("#keys tr", has_text="short-lived")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    client = openai.OpenAI(base_url=f"{fresh_cluster.url}/v1", api_key=secret, max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_scale_to_two_and_back(admin_tab: Tab) -> None:
    page = admin_tab.page
    admin_tab.open("deployments")
    replicas = page.locator("input[data-replicas]")
    replicas.fill("2")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("tr[data-instance] .badge.running")).to_have_count(2, timeout=RUNNING_TIMEOUT_MS)
    expect(page.locator("tr[data-model]")).to_contain_text("2 / 2")
    replicas.fill("1")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("tr[data-instance]")).to_have_count(1, timeout=60_000)
    expect(page.locator("tr[data-model]")).to_contain_text("1 / 1")


def test_stop_start_and_edit(admin_tab: Tab, fresh_cluster: Cluster, admin_password: str) -> None:
    page = admin_tab.page
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("tr[data-instance]")).to_have_count(0, timeout=60_000)
    expect(page.locator("tr[data-model]")).to_contain_text("0 / 0")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("tr[data-instance] .badge.running")).to_have_count(1, timeout=RUNNING_TIMEOUT_MS)
    with httpx.Client(base_url=fresh_cluster.url, auth=("admin", admin_password)) as admin:
        before = admin.get("/v2/models", params={"search": "tiny"}).json()["items"][0]
    assert before["categories"], "the tiny GGUF's categories were detected at create"
    page.get_by_role("link", name="Edit").click()
    form = page.locator("#deploy-form")
    expect(form.get_by_label("Name", exact=True)).to_have_value("tiny")
    form.get_by_label("Backend parameters (one per line)").fill("--ctx-size=256")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
    expect(page.locator("tr[data-instance] .badge.running")).to_have_count(1, timeout=RUNNING_TIMEOUT_MS)
    with httpx.Client(base_url=fresh_cluster.url, auth=("admin", admin_password)) as admin:
        saved = admin.get("/v2/models", params={"search": "tiny"}).json()["items"][0]
    assert saved["backend_parameters"] == ["--ctx-size=256"]
    kept = ("local_path", "backend", "categories", "env", "placement_strategy", "cpu_offloading")
    assert {k: saved[k] for k in kept} == {k: before[k] for k in kept}  # a PUT replaces: the form carried them


def test_every_page_renders(admin_tab: Tab) -> None:
    page = admin_tab.page
    checks = {  # what each page shows once its data arrived
        "overview": ("#counts", "1 / 1 running"),
        "overview charts": ("#util", "CPU"),
        "resources": ("#workers", "ready"),
        "usage": ("main", "Tokens per model"),  # the chats above were metered
        "usage per key": ("main", "from-the-dashboard"),
        "users": ("#users", "admin"),
        "profile": ("main", "Change password"),
    }
    for route, (where, text) in checks.items():
        admin_tab.open(route.split()[0])
        if route == "usage per key":
            page.get_by_label("Group by").select_option("api_key")
        expect(page.locator(where)).to_contain_text(text, timeout=30_000)
        admin_tab.shot(route.split()[0])
    admin_tab.open("overview")  # the history sampled every second meanwhile: the charts are drawn
    expect(page.locator("#util svg polyline")).not_to_have_count(0)
    expect(page.locator("#mem svg polyline")).not_to_have_count(0)
    admin_tab.shot("overview")
    admin_tab.open("resources")
    expect(page.locator("#files")).to_contain_text(str(Path("tiny.gguf")))


def test_delete_with_confirmation(admin_tab: Tab) -> None:
    page = admin_tab.page
    admin_tab.open("deployments")
    page.once("dialog", lambda dialog: dialog.dismiss())  # cancelling keeps the model
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("tr[data-model]")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No models yet.")).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
