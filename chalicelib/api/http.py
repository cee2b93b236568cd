"""Turning service results and problems into API Gateway responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice.app import Request, Response

from ..services.errors import ServiceError
from ..services.ports import RateLimiter
from .problems import (
    PROBLEM_CONTENT_TYPE,
    PROBLEMS_BY_STATUS,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    problem_for,
)

if TYPE_CHECKING:
    from pydantic import BaseModel  # imported by the views that use it: a refusal costs no pydantic import

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


def view_response(view: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response rendered by its view model (``views.py``), the same model that documents it."""
    return Response(body=view.model_dump_json(), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


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
        except ServiceError as refused:
            return problem_response(problem_for(refused))
        except dependency_errors() as error:
            return problem_response(dependency_down(error))

    return wrapper


MAX_BODY_BYTES = 64 * 1024  # larger bodies are answered 413 before any route runs


def dependency_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean a dependency is down. Imported when first needed, in an ``except`` clause: the
    libraries they come from are loaded by then, and a cold start does not pay for importing them here."""
    from ..adapters.outages import DEPENDENCY_DOWN

    return DEPENDENCY_DOWN


def dependency_down(error: Exception) -> ServiceUnavailable:
    """A 503 that says to retry, naming no host, address or credential of the service that failed."""
    log.warning("a dependency is unavailable: %s", type(error).__name__)
    return ServiceUnavailable("a service the engine depends on is unavailable; try again shortly",
                              headers={"Retry-After": "1"})


UNLIMITED_PATHS = frozenset({"/health"})  # monitoring must see the engine even when a client floods it


def guard(request: Request, get_response: Callable[[Request], Response], rate_limiter: RateLimiter) -> Response:
    """Every REST request passes here (Chalice HTTP middleware): body size and per-caller rate limits before the
    route runs, and problem details for the errors Chalice answers itself (405, 415) after."""
    if request.raw_body and len(request.raw_body) > MAX_BODY_BYTES:
        return problem_response(PayloadTooLarge(f"the body is {len(request.raw_body)} bytes; at most "
                                                f"{MAX_BODY_BYTES} are accepted"))
    if request.path not in UNLIMITED_PATHS:
        wait_ms = _wait_ms(rate_limiter, _caller(request))
        if wait_ms:
            return problem_response(TooManyRequests("too many requests; slow down and retry after Retry-After "
                                                    "seconds", retry_after_seconds=-(-wait_ms // 1000)))
    return _as_problem(get_response(request))


def _caller(request: Request) -> str:
    """The rate limit's key: the token's user, or the address of an anonymous caller."""
    context = request.context or {}
    user_id = (context.get("authorizer") or {}).get("principalId")
    if user_id:
        return f"user:{user_id}"
    return f"ip:{(context.get('identity') or {}).get('sourceIp', 'unknown')}"


def _wait_ms(rate_limiter: RateLimiter, key: str) -> int:
    try:
        return rate_limiter.wait_ms(key)
    except dependency_errors() as error:
        # Refusing every request because the counter is away would turn a Redis blip into an outage.
        log.warning("rate limit not checked, Redis unavailable: %s", type(error).__name__)
        return 0


def _as_problem(response: Response) -> Response:
    """Chalice answers some errors itself with ``{"Code", "Message"}``; clients get problem details instead."""
    body = response.body
    if response.status_code < 400 or not isinstance(body, dict) or set(body) != {"Code", "Message"}:
        return response
    problem = PROBLEMS_BY_STATUS.get(response.status_code)
    if problem is None:
        log.error("answering %s: %s", response.status_code, body["Code"])
        error = ProblemError("the request could not be handled")
        error.status = response.status_code
        return problem_response(error)
    headers = {k: ", ".join(v) if isinstance(v, list) else v for k, v in response.headers.items()
               if k.lower() != "content-type"}
    return problem_response(problem(str(body["Message"]), headers=headers))


def created_location(request_context: dict[str, Any] | None, created_id: str) -> str:
    """Where what a POST created lives, as the client must call it: under the path it posted to, which API Gateway
    gives with its stage prefix (``/api/orders`` on the execute-api domain, ``/orders`` locally or behind a custom
    domain's base path mapping)."""
    posted = (request_context or {}).get("path") or "/orders"
    return f"{posted.rstrip('/')}/{created_id}"
