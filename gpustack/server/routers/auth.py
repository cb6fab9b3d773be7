"""Login/logout routes (the session cookie for the dashboard) and GPUStack's password change."""

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gpustack.schemas.users import LoginRequest, PasswordChange, User, UserPublic
from gpustack.server.auth import SESSION_COOKIE, CurrentUser, SessionDep, client_address
from gpustack.server.services import users as service

router = APIRouter(prefix="/auth", tags=["auth"])


async def _credentials(request: Request) -> LoginRequest:
    """GPUStack's UI and client send a form (`username`, `password`); JSON is read too."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        try:
            return LoginRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
    form = await request.form()
    try:
        return LoginRequest.model_validate({k: v for k, v in form.items() if isinstance(v, str)})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


@router.post(
    "/login",
    response_model=UserPublic,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": LoginRequest.model_json_schema()},
                "application/json": {"schema": LoginRequest.model_json_schema()},
            }
        }
    },
)
async def login(request: Request, response: Response, session: SessionDep) -> User:
    data = await _credentials(request)
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


@router.post("/update-password", response_model=UserPublic)
async def update_password(data: PasswordChange, request: Request, session: SessionDep, user: CurrentUser) -> User:
    """GPUStack's path for `POST /v2/users/me/password` (same body: current_password, new_password)."""
    data_dir = request.app.state.config.data_dir
    return await service.change_password(session=session, user=user, data=data, data_dir=data_dir)
