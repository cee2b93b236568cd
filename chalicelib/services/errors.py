"""What a use case refuses, said without HTTP: the API layer (``chalicelib/api/problems.py``) maps
each kind to its status and headers, and a WebSocket client gets the same problem in an error frame."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    def __init__(self, detail: str, fields: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or []  # which inputs are wrong, and how: {"field", "message"}


class Malformed(ServiceError):
    """The request cannot be read: not JSON, or a cursor this service did not issue."""


class Invalid(ServiceError):
    """Readable, but what it asks for is not allowed (a bad amount, a key reused with another request)."""


class NotFound(ServiceError):
    """No such thing for this caller."""


class Conflict(ServiceError):
    """The thing's state does not allow it now (an order already submitted, a request still in flight)."""


class Unauthenticated(ServiceError):
    """The caller is not known: no credentials, or ones that are not valid."""


class NotAllowed(ServiceError):
    """The caller is known but may not do this."""


class TooMany(ServiceError):
    """The caller is over a limit; it may try again after ``retry_after_seconds``."""

    def __init__(self, detail: str, retry_after_seconds: int = 1):
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class Unavailable(ServiceError):
    """A dependency cannot be reached right now; trying again later may work."""

    def __init__(self, detail: str, retry_after_seconds: int | None = None):
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
