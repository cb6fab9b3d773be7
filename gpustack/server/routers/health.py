"""Liveness and readiness probes and the version (no auth)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gpustack import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready once start-up finished and the database answers."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "starting"}, status_code=503)
    async with request.app.state.db.session() as session:
        await session.execute(text("SELECT 1"))
    return JSONResponse({"status": "ready"})


@router.get("/version")
async def version() -> dict[str, str]:
    """As GPUStack answers it: the server's version and the commit it was built from."""
    return {"version": __version__, "git_commit": "unknown"}
