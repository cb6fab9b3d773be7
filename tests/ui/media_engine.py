"""A stand-in OpenAI engine for speech and image models (no such engine runs here), started by the worker as a
`custom` backend: `python media_engine.py <host> <port> <model name>`. It answers in the formats real engines do:
WAV audio, `{"text"}` transcriptions, base64 PNG images, rerank results."""

import base64
import io
import struct
import sys
import wave
import zlib

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TRANSCRIPT = "hello from the stand-in engine"


def wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()


def png(side: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x30\x60\xc0" * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def app(model: str) -> Starlette:
    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model"}]})

    async def speech(request: Request) -> Response:
        await request.json()
        return Response(wav(), media_type="audio/wav")

    async def transcriptions(request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        size = len(await upload.read()) if upload is not None and not isinstance(upload, str) else 0
        return JSONResponse({"text": f"{TRANSCRIPT} ({size} bytes)"})

    async def images(request: Request) -> Response:
        await request.json()
        return JSONResponse({"created": 0, "data": [{"b64_json": base64.b64encode(png()).decode()}]})

    async def rerank(request: Request) -> Response:
        body = await request.json()
        query = set(body["query"].lower().split())  # scored by words shared with the query
        scores = [len(query & set(d.lower().split())) / (len(query) or 1) for d in body["documents"]]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return JSONResponse({"results": [{"index": i, "relevance_score": scores[i]} for i in ranked]})

    return Starlette(routes=[
        Route("/v1/models", models), Route("/v1/audio/speech", speech, methods=["POST"]),
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/v1/images/generations", images, methods=["POST"]), Route("/v1/rerank", rerank, methods=["POST"]),
    ])  # fmt: skip


if __name__ == "__main__":
    host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    uvicorn.run(app(name), host=host, port=port, log_level="info")
