"""A tiny OpenAI-style engine stand-in for worker tests: /v1/models and an echoing chat endpoint."""

import argparse
import json
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model_name = "fake"

    def log_message(self, format: str, *args: Any) -> None:
        print(f"request: {format % args}", flush=True)

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.model_name, "object": "model"}]})
        elif self.path == "/metrics":  # shaped like vLLM's
            text = (
                "# HELP vllm:num_requests_running Requests running.\n# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{model_name="{self.model_name}"}} 1.0\n'
                "# HELP vllm:prompt_tokens_total Prompt tokens.\n# TYPE vllm:prompt_tokens_total counter\n"
                "vllm:prompt_tokens_total 42.0\n"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
        elif self.path.startswith("/echo-path"):
            self._json(200, {"path": self.path})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": "not found"})
        elif request.get("stream"):
            self._stream(request)
        else:
            text = request["messages"][-1]["content"]
            self._json(200, {"model": self.model_name, "choices": [{"message": {"content": text}}],
                             "authorization": self.headers.get("Authorization")})  # fmt: skip

    def _stream(self, request: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for word in request["messages"][-1]["content"].split():
            self._chunk(f"data: {json.dumps({'delta': word})}\n\n".encode())
            time.sleep(0.05)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-name", default="fake")
    parser.add_argument("--ignore-sigterm", action="store_true", help="like an engine stuck in shutdown")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Handler.model_name = args.model_name
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake engine listening on {args.host}:{args.port} as {args.model_name}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
