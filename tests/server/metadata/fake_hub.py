"""A real HTTP server on loopback answering what huggingface_hub and ModelScope's REST API ask for model
metadata: the file listing with sizes, file resolves (config.json), and byte ranges of weight files.

It serves directories: `repos[repo_id] = Path` (a model directory with config.json and sparse weights).
Every request is recorded (path, Range header, bytes sent) so tests can tell what was fetched.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    path: str
    range: str | None
    sent: int


@dataclass
class FakeHub:
    repos: dict[str, Path] = field(default_factory=dict)
    log: list[Served] = field(default_factory=list)
    url: str = ""

    def listing(self, repo: str) -> dict[str, int]:
        root = self.repos[repo]
        return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            if path.startswith("/api/v1/models/"):
                return self._modelscope(path, query)
            if path.startswith("/api/models/"):
                return self._hf_info(path)
            if "/resolve/" in path:
                repo, _, rest = path.lstrip("/").partition("/resolve/")
                _, _, name = rest.partition("/")
                return self._file(repo, name)
            return self._send(404, b'{"error": "not found"}')

        def _hf_info(self, path: str) -> None:
            repo = path.removeprefix("/api/models/").split("/revision/")[0]
            if repo not in hub.repos:
                return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
            siblings = [{"rfilename": n, "size": s} for n, s in hub.listing(repo).items()]
            return self._send(200, json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode())

        def _modelscope(self, path: str, query: dict[str, list[str]]) -> None:
            rest = path.removeprefix("/api/v1/models/")
            repo, _, tail = rest.rpartition("/repo")
            if repo not in hub.repos:
                return self._send(404, b'{"Code": 404, "Message": "not found"}')
            if tail == "/files":
                files = [{"Path": n, "Size": s, "Type": "blob"} for n, s in hub.listing(repo).items()]
                return self._send(200, json.dumps({"Code": 200, "Data": {"Files": files}}).encode())
            return self._file(repo, query.get("FilePath", [""])[0])

        def _file(self, repo: str, name: str) -> None:
            root = hub.repos.get(repo)
            target = root / name if root else None
            if target is None or not target.is_file():
                return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"})
            size = target.stat().st_size
            wanted = self.headers.get("Range")
            start, stop = 0, size - 1
            if wanted:
                first, _, last = wanted.removeprefix("bytes=").partition("-")
                start, stop = int(first), min(size - 1, int(last) if last else size - 1)
            with open(target, "rb") as fh:
                fh.seek(start)
                body = fh.read(stop - start + 1)
            extra = {"Content-Range": f"bytes {start}-{stop}/{size}"} if wanted else {}
            hub.log.append(Served(f"{repo}/{name}", wanted, len(body)))
            return self._send(206 if wanted else 200, body, extra)

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_hub(hub: FakeHub) -> Iterator[FakeHub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
