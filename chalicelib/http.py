"""Turning service results and problems into API Gateway responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chalice.app import Response

from .adapters.outages import DEPENDENCY_DOWN
from .errors import PROBLEM_CONTENT_TYPE, ProblemError, ServiceUnavailable

log = logging.getLogger(__name__)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, default=_default, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def problem_response(error: ProblemError) -> Response:
    return Response(
        body=json.dumps(error.to_problem(), separators=(",", ":")),
        status_code=error.status,
        headers={"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers},
    )


def answers_problems(view: Callable[..., Response]) -> Callable[..., Response]:
    """Chalice catches view exceptions before any middleware sees them, so each view converts its own."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except ProblemError as error:
            return problem_response(error)
        except DEPENDENCY_DOWN as error:
            return problem_response(dependency_down(error))

    return wrapper


def dependency_down(error: Exception) -> ServiceUnavailable:
    """A 503 that says to retry, naming no host, address or credential of the service that failed."""
    log.warning("a dependency is unavailable: %s", type(error).__name__)
    return ServiceUnavailable("a service the engine depends on is unavailable; try again shortly",
                              headers={"Retry-After": "1"})
