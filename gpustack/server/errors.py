"""Maps domain, validation and database errors to clear HTTP answers in one place (GPUStack's shape)."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpustack.compat.errors import error_response
from gpustack.core.errors import GPUStackError, NotFoundError
from gpustack.gateway.forward import openai_error
from gpustack.gateway.router import openai_error_handler

logger = logging.getLogger(__name__)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 without echoing the input (it may hold NaN or bytes that cannot be rendered): every error in
    `message`, and as a list in `details.errors` (`loc`, `msg`, `type`)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or "invalid request"
    if request.url.path.startswith("/v1"):
        return openai_error(422, message, "invalid_request_error")
    return error_response(422, message, details={"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such route, method not allowed) in the route family's shape."""
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail) if exc.detail else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"{request.method} {request.url.path} does not exist"
    elif exc.status_code == 405:
        message = f"{request.url.path} does not take {request.method}"
    return _answer(request, exc.status_code, message, "invalid_request_error", dict(exc.headers or {}))


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A GPUStackError: OpenAI's shape under /v1, GPUStack's `{code, reason, message}` elsewhere."""
    assert isinstance(exc, GPUStackError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    if request.url.path.startswith("/v1"):
        return await openai_error_handler(request, exc)
    return error_response(exc.status_code, exc.message, headers=headers)


def _is_data_error(exc: DBAPIError) -> bool:
    """DataError, or a driver error with SQLSTATE class 22 ("data exception") that SQLAlchemy left generic."""
    if isinstance(exc, DataError):
        return True
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if str(getattr(err, "sqlstate", "") or "").startswith("22"):
            return True
    return False


def _answer(
    request: Request, status: int, message: str, err_type: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if request.url.path.startswith("/v1"):
        response = openai_error(status, message, err_type)
        response.headers.update(headers or {})
        return response
    return error_response(status, message, headers=headers)


async def _db_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot store (e.g. a NUL character on PostgreSQL) is the client's error; any
    other database error (connection lost, server down...) is an outage: 503, logged once per outage."""
    if isinstance(exc, DBAPIError) and _is_data_error(exc):
        reason = str(exc.orig).splitlines()[0][:300]
        return _answer(request, 400, f"a value could not be stored: {reason}", "invalid_request_error")
    request.app.state.db.outage(exc)
    message = "the database is unavailable; try again shortly (the server keeps retrying)"
    return _answer(request, 503, message, "service_unavailable")


async def _deleted_meanwhile(request: Request, _exc: Exception) -> JSONResponse:
    """The row was deleted by another request between being read and being written."""
    return await domain_error_handler(request, NotFoundError("the resource was deleted by another request"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: a short message in the route family's error shape (the traceback is logged)."""
    return _answer(request, 500, "internal server error; see the server log", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GPUStackError, domain_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DBAPIError, _db_error_handler)
    app.add_exception_handler(ConnectionError, _db_error_handler)  # asyncpg's refused connect is not wrapped
    app.add_exception_handler(StaleDataError, _deleted_meanwhile)
    app.add_exception_handler(ObjectDeletedError, _deleted_meanwhile)
    app.add_exception_handler(Exception, _unexpected)
