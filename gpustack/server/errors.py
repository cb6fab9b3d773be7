"""Maps domain, validation and database-data errors to clear 4xx answers in one place."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError

from gpustack.core.errors import GPUStackError
from gpustack.gateway.router import openai_error_handler


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Like FastAPI's, without echoing the input (it may hold NaN or bytes that cannot be rendered)."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def _is_data_error(exc: DBAPIError) -> bool:
    """DataError, or a driver error with SQLSTATE class 22 ("data exception") that SQLAlchemy left generic."""
    if isinstance(exc, DataError):
        return True
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if str(getattr(err, "sqlstate", "") or "").startswith("22"):
            return True
    return False


async def _db_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot store (e.g. a NUL character on PostgreSQL) is the client's error;
    anything else (connection loss, ...) stays a server error."""
    assert isinstance(exc, DBAPIError)
    if not _is_data_error(exc):
        return JSONResponse({"detail": "database error"}, status_code=500)
    reason = str(exc.orig).splitlines()[0][:300]
    return JSONResponse({"detail": f"a value could not be stored: {reason}"}, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GPUStackError, openai_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DBAPIError, _db_error_handler)
