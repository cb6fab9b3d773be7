"""Runs every `bash` block of README.md and docs/*.md, in order, against a real server started by `make run`.

The commands run as written. Only documented placeholders are replaced, the way a user would fill them in:
`localhost:8080`/`HEAD:8080` become the test's free port, `TOKEN` the content of `data/token` (and
`/path/to/token` its path), `/models/tiny.gguf`
a generated tiny GGUF. `make run` and `gpustack start` run in the background with their ports (and the worker's
data dir and name) set through documented variables; `make test` is skipped (this test is part of it).
Blocks fenced as `shell` (they need a GPU, another host or a registry) are shown, not run.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.utils.server import free_port, wait_ready
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")

REPO = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
DOCS = [p for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))] if _BLOCK.search(p.read_text())]
_ASSIGNED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_COMMAND_TIMEOUT_S = 240
# What the output of some commands must contain, beyond exiting 0 without an error body.
EXPECTED = {
    "/v1/chat/completions": '"chat.completion',
    '"include_usage": true': '"completion_tokens"',
    "/auth/login": '"username":"admin"',
    "--version": "gpustack ",
    "--help": "GPUSTACK_",
}


def bash_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text())


def _complete(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # no closing quotation
        return False
    return True


def commands(block: str) -> list[str]:
    """Logical command lines of a block: continuations joined, comments and blank lines dropped."""
    out, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if not _complete(current):  # a quoted string goes on over the next line, as in a shell
            current += "\n"
            continue
        out.append(current.split("  # ")[0].rstrip() if "  # " in current else current)
        current = ""
    return out


@dataclass
class Session:
    """A user's terminal: a working directory holding `data`, shell variables, background processes."""

    root: Path
    port: int = field(default_factory=free_port)
    variables: dict[str, str] = field(default_factory=dict)
    background: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    model_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUSTACK_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # an activated venv
        return {**env, **self.variables, **extra}

    def fill(self, command: str) -> str:
        command = command.replace("localhost:8080", f"localhost:{self.port}")
        command = command.replace("HEAD:8080", f"127.0.0.1:{self.port}")
        if self.model_path is not None:
            command = command.replace("/models/tiny.gguf", str(self.model_path))
        command = command.replace("/path/to/token", str(self.data / "token"))
        if re.search(r"\bTOKEN\b", command):
            command = re.sub(r"\bTOKEN\b", (self.data / "token").read_text().strip(), command)
        return command.replace("/path/to/token", str(self.data / "token"))

    def spawn(self, command: str, cwd: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        popen = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.background.append((popen, log))
        return popen

    def run(self, command: str) -> str:
        names = [m.group(1) for m in [_ASSIGNED.match(command)] if m]
        dump = "".join(f'printf "\\0%s\\0%s\\0" {n} "${n}"\n' for n in names)
        script = f"set -euo pipefail\n{command}\n{dump}"
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.root, env=self.env(), capture_output=True, timeout=_COMMAND_TIMEOUT_S
        )
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{out}\n{done.stderr.decode()}"
        if names:
            out, name, value, _ = out.split("\0")
            self.variables[name] = value
        return out

    def stop(self) -> None:
        for popen, log in reversed(self.background):
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
                try:
                    popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(popen.pid, signal.SIGKILL)
            print(f"---- {log.name} ----\n" + log.read_text(errors="replace")[-3000:])


def start_make_run(session: Session, command: str) -> None:
    # The Makefile's documented variables; make exports them, so engines see PORT (issue: they must ignore it).
    ports = {"PORT": str(session.port), "WORKER_PORT": str(free_port()), "INSTANCE_PORTS": "41700-41749"}
    env = session.env(**ports, DATA_DIR=str(session.data))
    popen = session.spawn(command, REPO, env, "make-run")
    wait_ready(session.url, alive=lambda: popen.poll() is None, timeout=300)


def start_worker(session: Session, command: str) -> None:
    name = "readme-worker"
    settings = {
        "GPUSTACK_DATA_DIR": str(session.root / name),
        "GPUSTACK_WORKER_NAME": name,
        "GPUSTACK_WORKER_PORT": str(free_port()),
        "GPUSTACK_INSTANCE_PORT_RANGE": "41750-41799",
    }
    popen = session.spawn(session.fill(command), session.root, session.env(**settings), name)
    password = (session.data / "initial_admin_password").read_text().strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert popen.poll() is None, f"the worker exited with {popen.returncode}"
        workers = httpx.get(f"{session.url}/v2/workers", auth=("admin", password)).json()["items"]
        if any(w["name"] == name and w["state"] == "ready" for w in workers):
            return
        time.sleep(0.5)
    pytest.fail("the worker started as documented never became ready")


def check_output(command: str, out: str) -> None:
    for marker, expected in EXPECTED.items():
        if marker in command:
            assert expected in out, f"{command!r} printed:\n{out}"
    for line in out.splitlines():
        try:
            body = json.loads(line)
        except json.JSONDecodeError:
            continue
        failed = isinstance(body, dict) and ({"error", "detail"} & set(body) or {"code", "reason"} <= set(body))
        assert not failed, f"{command!r} failed: {line}"


def run_command(session: Session, command: str) -> None:
    words = shlex.split(command)
    if words[:2] == ["make", "test"]:
        return  # this test is part of `make test`
    if words[:2] == ["make", "run"]:
        start_make_run(session, command)
    elif words[:2] == ["gpustack", "start"] and "--help" not in words:
        start_worker(session, command)
    else:
        check_output(command, session.run(session.fill(command)))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    session = Session(tmp_path_factory.mktemp("readme"))
    session.model_path = write_tiny_gguf(session.root / "tiny.gguf")
    try:
        yield session
    finally:
        session.stop()


def test_commands_are_split_like_a_shell_reads_them() -> None:
    block = "# comment\nmake run   # starts\n\ncurl a \\\n   -d b\ncurl -d '{\n  \"x\": 1}'\n"
    assert commands(block) == ["make run", "curl a     -d b", "curl -d '{\n  \"x\": 1}'"]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_documented_commands_work_verbatim(session: Session, path: Path) -> None:
    blocks = bash_blocks(path)
    if path.name == "README.md":
        assert len(blocks) >= 3, "the README's examples were not found"
    for block in blocks:
        for command in commands(block):
            run_command(session, command)
