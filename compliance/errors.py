"""The one error type services raise. The API turns it into a 4xx with its message."""


class ServiceError(Exception):
    """A request that the rules of the service refuse. `status` is the HTTP status to answer."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class PermissionDenied(ServiceError):
    status = 403
    code = "permission_denied"
