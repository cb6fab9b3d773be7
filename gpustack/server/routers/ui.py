"""Serves the dashboard: an ES-module app (`gpustack/ui/`) that talks to the public API with the session cookie."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gpustack.core.errors import NotFoundError

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

# The page runs only its own modules; it may ask the Hugging Face hub for search results (where reachable), and
# no other site may frame it.
PAGE_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self' https://huggingface.co; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def asset_path(path: str) -> Path:
    """The file under UI_DIR that `path` names; anything outside it, or of another type, is not found."""
    target = (UI_DIR / path).resolve()
    if not target.is_relative_to(UI_DIR) or target.suffix not in MEDIA_TYPES or not target.is_file():
        raise NotFoundError(f"no dashboard asset {path!r}")
    return target


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(UI_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/ui/{path:path}")
async def asset(path: str) -> FileResponse:
    target = asset_path(path)
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    return FileResponse(target, media_type=MEDIA_TYPES[target.suffix], headers=headers)
