"""Domain errors shared by server and worker; mapped to HTTP statuses in one place."""


class GPUStackError(Exception):
    """Base error; `status_code` is the HTTP status the API answers with."""

    status_code = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidError(GPUStackError):
    status_code = 400


class UnauthorizedError(GPUStackError):
    status_code = 401


class ForbiddenError(GPUStackError):
    status_code = 403


class NotFoundError(GPUStackError):
    status_code = 404


class ConflictError(GPUStackError):
    status_code = 409


class UnavailableError(GPUStackError):
    status_code = 503


class PayloadTooLargeError(GPUStackError):
    status_code = 413


class TooManyRequestsError(GPUStackError):
    """Answered with a `Retry-After` header of `retry_after` whole seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))
