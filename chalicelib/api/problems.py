"""Errors a client can act on, rendered as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

from ..services import errors as service
from ..services.errors import ServiceError

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://order-engine.dev/problems/{self.title.lower().replace(' ', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(ProblemError):
    status, title = 400, "Bad Request"


class Unauthorized(ProblemError):
    status, title = 401, "Unauthorized"


class Forbidden(ProblemError):
    status, title = 403, "Forbidden"


class NotFound(ProblemError):
    status, title = 404, "Not Found"


class MethodNotAllowed(ProblemError):
    status, title = 405, "Method Not Allowed"


class PayloadTooLarge(ProblemError):
    status, title = 413, "Content Too Large"


class UnsupportedMediaType(ProblemError):
    status, title = 415, "Unsupported Media Type"


class TooManyRequests(ProblemError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, retry_after_seconds: int = 1, headers: dict[str, str] | None = None):
        super().__init__(detail, headers={**(headers or {}), "Retry-After": str(max(1, retry_after_seconds))})


class Unprocessable(ProblemError):
    status, title = 422, "Unprocessable Content"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class ServiceUnavailable(ProblemError):
    status, title = 503, "Service Unavailable"


PROBLEMS_BY_STATUS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PayloadTooLarge,
                UnsupportedMediaType, Unprocessable, TooManyRequests, ServiceUnavailable)
}


def problem_for(error: ServiceError) -> ProblemError:
    """The problem a use case's refusal is to its HTTP or WebSocket client."""
    if isinstance(error, service.TooMany):
        return TooManyRequests(error.detail, retry_after_seconds=error.retry_after_seconds)
    if isinstance(error, service.Unavailable):
        retry = {"Retry-After": str(error.retry_after_seconds)} if error.retry_after_seconds else {}
        return ServiceUnavailable(error.detail, headers=retry)
    kind = _PROBLEMS_BY_REFUSAL.get(type(error), ProblemError)
    return kind(error.detail, error.fields)


_PROBLEMS_BY_REFUSAL: dict[type[ServiceError], type[ProblemError]] = {
    service.Malformed: BadRequest,
    service.Invalid: Unprocessable,
    service.NotFound: NotFound,
    service.Conflict: Conflict,
    service.Unauthenticated: Unauthorized,
    service.NotAllowed: Forbidden,
}
