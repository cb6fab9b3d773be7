"""GPUStack's error body `{"code", "reason", "message"}` for everything outside the OpenAI routes."""

from typing import Any

from fastapi.responses import JSONResponse

# The `reason` GPUStack's clients read (e.g. 409 "AlreadyExists" vs "Conflict"); 422 is "Invalid".
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    413: "RequestEntityTooLarge",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def error_body(status: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "reason": REASONS.get(status, "Error"), "message": message}
    if details is not None:
        body["details"] = details
    return body


def error_response(
    status: int, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, details), status_code=status, headers=headers)
