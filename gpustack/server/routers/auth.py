"""Login/logout routes: the session cookie for the dashboard."""

from fastapi import APIRouter, Request, Response

from gpustack.schemas.users import LoginRequest, User, UserPublic
from gpustack.server.auth import SESSION_COOKIE, SESSION_TTL_SECONDS, SessionDep, client_address
from gpustack.server.security import sign_session
from gpustack.server.services import users as service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=UserPublic)
async def login(data: LoginRequest, request: Request, response: Response, session: SessionDep) -> User:
    user = await service.authenticate(
        session=session,
        username=data.username,
        password=data.password,
        throttle=request.app.state.login_throttle,
        address=client_address(request),
    )
    token = sign_session(request.app.state.secret_key, user.id, SESSION_TTL_SECONDS)  # type: ignore[arg-type]
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_TTL_SECONDS, httponly=True, samesite="lax", path="/")
    return user


@router.post("/logout", status_code=204)
async def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
