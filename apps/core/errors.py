"""Domain exceptions. Services raise these; the API and the portal map them to responses.

Each carries the ``type`` and ``code`` of the error envelope (docs/api.md) and an HTTP status.
"""

from __future__ import annotations


class PlazaError(Exception):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(
        self, message: str, *, code: str | None = None, param: str | None = None, details: list[dict] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.param = param
        # Every problem when there are several (e.g. all manifest errors at once), each a dict
        # with at least "message" and the "param"/"path" it concerns.
        self.details = details


class ValidationFailed(PlazaError):
    status = 400
    code = "validation_error"


class NotFound(PlazaError):
    status = 404
    type = "not_found_error"
    code = "not_found"

    def __init__(self, message: str = "No such resource.", **kwargs):
        super().__init__(message, **kwargs)


class Unauthenticated(PlazaError):
    status = 401
    type = "authentication_error"
    code = "unauthenticated"

    def __init__(self, message: str = "Authentication required.", **kwargs):
        super().__init__(message, **kwargs)


class PermissionDenied(PlazaError):
    status = 403
    type = "permission_error"
    code = "forbidden"

    def __init__(self, message: str = "You are not allowed to do this.", **kwargs):
        super().__init__(message, **kwargs)


class Conflict(PlazaError):
    status = 409
    type = "conflict_error"
    code = "conflict"


class RateLimited(PlazaError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str = "Too many requests.", *, retry_after: int = 60, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
