"""Serves the dashboard: a single static page that talks to the /v2 API with the session cookie."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

UI_DIR = Path(__file__).resolve().parents[2] / "ui"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(UI_DIR / "index.html", media_type="text/html")
