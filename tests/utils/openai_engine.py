"""A stand-in worker proxy + OpenAI engine that reports usage like vLLM, and a helper that routes a model to it."""

import asyncio
import json
import threading
import time
from typing import Any, Self

import httpx
import uvicorn
from sqlalchemy import create_engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gpustack.schemas.instances import InstanceState, ModelInstance
from tests.utils.server import RunningServer, free_port

PROMPT_TOKENS = 7
WORDS = ["one", "two", "three"]  # one chunk per token, as engines stream


class StandInEngine:
    """A worker proxy's chat route, /proxy/<instance id>/v1/chat/completions, served by `chat` on a free
    loopback port from a thread while the object is entered."""

    def __init__(self) -> None:
        self.port = free_port()
        app = Starlette(routes=[Route("/proxy/{iid:int}/v1/chat/completions", self.chat, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def chat(self, request: Request) -> Response:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "stand-in engine did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class UsageEngine(StandInEngine):
    """Answers /proxy/<iid>/v1/chat/completions with PROMPT_TOKENS + len(WORDS) tokens of usage; streams send
    the usage chunk only when the request asks for it (stream_options.include_usage)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        super().__init__()

    @staticmethod
    def usage() -> dict[str, int]:
        return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": len(WORDS), "total_tokens": PROMPT_TOKENS + 3}

    async def chat(self, request: Request) -> Response:
        data = json.loads(await request.body())
        self.bodies.append(data)
        base = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": data["model"]}
        if not data.get("stream"):
            message = {"role": "assistant", "content": " ".join(WORDS)}
            return JSONResponse({**base, "object": "chat.completion", "choices": [{"index": 0, "message": message}],
                                 "usage": self.usage()})  # fmt: skip
        wants = (data.get("stream_options") or {}).get("include_usage") is True

        async def events() -> Any:
            for word in WORDS:
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": word}}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                await asyncio.sleep(self.delay)
            if wants:
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': self.usage()})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def route_model(server: RunningServer, db_url: str, engine: UsageEngine, model: str) -> int:
    """Registers a ready worker whose proxy is the stand-in, and a running instance of `model` on it."""
    admin = server.admin()
    status = {"cpu": {"total": 4, "utilization_rate": 20.0}, "memory": {"total": 16 << 30, "used": 4 << 30},
              "gpu_devices": [{"index": 0, "name": "Sim", "memory_total": 8 << 30, "memory_used": 1 << 30,
                               "core_utilization": 42.0, "temperature": 51.0, "power_watts": 300.0,
                               "simulated": True}]}  # fmt: skip
    r = httpx.post(f"{server.url}/v2/workers/register", headers={"Authorization": f"Bearer {server.token}"},
                   json={"name": f"w-{model}", "ip": "127.0.0.1", "port": engine.port, "status": status})  # fmt: skip
    assert r.status_code == 200, r.text
    worker = r.json()
    auth = {"Authorization": f"Bearer {worker['credential']}"}
    r = httpx.post(f"{server.url}/v2/workers/me/status", headers=auth, json={"status": status})
    assert r.status_code == 200, r.text
    r = admin.post("/v2/models", json={"name": model, "local_path": "/models/tiny.gguf", "replicas": 0})
    assert r.status_code == 201, r.text
    sync = create_engine(db_url, connect_args={"timeout": 10} if db_url.startswith("sqlite") else {})
    try:
        with Session(sync) as session:
            row = ModelInstance(name=f"{model}-0", model_id=r.json()["id"], model_name=model, worker_id=worker["id"],
                                worker_name=worker["name"], worker_ip="127.0.0.1", gpu_indexes=[0],
                                state=InstanceState.SCHEDULED)  # fmt: skip
            session.add(row)
            session.commit()
            iid = int(row.id)  # type: ignore[arg-type]
    finally:
        sync.dispose()
    r = httpx.patch(f"{server.url}/v2/model-instances/{iid}", headers=auth, json={"state": "running", "port": 40000})
    assert r.status_code == 200, r.text
    return iid
