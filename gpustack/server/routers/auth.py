"""Login/logout routes: the session cookie for the dashboard."""

from fastapi import APIRouter, Request, Response

from gpustack.schemas.users import LoginRequest, User, UserPublic
from gpustack.server.auth import SESSION_COOKIE, SessionDep, client_address
from gpustack.server.services import users as service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=UserPublic)
async def login(data: LoginRequest, request: Request, response: Response, session: SessionDep) -> User:
    user, token = await service.login(
        session=session,
        username=data.username,
        password=data.password,
        throttle=request.app.state.login_throttle,
        address=client_address(request),
        secret_key=request.app.state.secret_key,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=service.SESSION_TTL_SECONDS,
        httponly=True,
        samesite="lax",
        path="/",
        secure=request.url.scheme == "https",  # served over TLS (directly, or a proxy's X-Forwarded-Proto)
    )
    return user


@router.post("/logout", status_code=204)
async def logout(request: Request, session: SessionDep) -> Response:
    await service.logout(
        session=session, secret_key=request.app.state.secret_key, cookie=request.cookies.get(SESSION_COOKIE)
    )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
