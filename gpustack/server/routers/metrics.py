"""GET /metrics: the Prometheus exposition, for admin credentials or the configured metrics token."""

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gpustack.core.errors import ForbiddenError
from gpustack.server.auth import get_principal

router = APIRouter(tags=["metrics"])


def _token_matches(request: Request) -> bool:
    token: str | None = request.app.state.config.metrics_token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())  # type: ignore[union-attr]


async def _authorize(request: Request) -> None:
    """The metrics token (no database involved), else admin credentials; open when metrics_auth is off."""
    if not request.app.state.config.metrics_auth or _token_matches(request):
        return
    db = request.app.state.db
    async with db.session() as session:
        principal = await get_principal(request, session)
    if not principal.is_admin:
        raise ForbiddenError("/metrics needs admin credentials or the metrics token (--metrics-token)")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await _authorize(request)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
