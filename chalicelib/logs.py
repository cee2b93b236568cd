"""Structured logs for every function: Powertools' Logger, one JSON line per record, carrying the invocation's
Lambda request id and, where there is one, the ``orderId``, the ``connectionId`` and the ``idempotencyKey``.

Every module of ``chalicelib`` logs with ``logging.getLogger(__name__)``; their records reach the Logger's JSON
handler through the package's logger, so no module needs to know about Powertools. The level comes from
``LOG_LEVEL`` (INFO by default: Lambda's root logger would otherwise drop every ``info`` line at WARNING).

The keys live in a context variable (Powertools' thread-safe keys): the local cloud runs many invocations in one
process, each in a thread of its own, and a key bound by one must never appear on another's lines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.logging import Logger

from .tracing import traced

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "order-engine"),
                level=os.environ.get("LOG_LEVEL", "INFO").upper())

_package = logging.getLogger(__name__.rsplit(".", 1)[0])
_package.setLevel(logger.log_level)
if logger.registered_handler not in _package.handlers:
    _package.addHandler(logger.registered_handler)
_package.propagate = False  # Lambda's root handler would print each record a second time, as plain text

_cold = True


def _present(keys: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in keys.items() if value not in (None, "")}


@contextmanager
def invocation(context: Any, **keys: Any) -> Iterator[None]:
    """Binds the invocation's request id, function and ``keys`` to every line this thread logs until it ends, and
    traces it where X-Ray tracing is on (see tracing.py)."""
    with _logged(context, **keys), traced(getattr(context, "function_name", None) or "handler", **keys):
        yield


@contextmanager
def _logged(context: Any, **keys: Any) -> Iterator[None]:
    global _cold
    cold, _cold = _cold, False
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**_present({
        "function_request_id": getattr(context, "aws_request_id", None),
        "function_name": getattr(context, "function_name", None),
        "cold_start": cold,
        **keys,
    }))
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()


def bind(**keys: Any) -> None:
    """Adds keys learnt during the invocation (the id of the order just placed) to this thread's later lines."""
    logger.thread_safe_append_keys(**_present(keys))


def current_keys() -> dict[str, Any]:
    """This thread's keys, for work it hands to other threads (each record of a worker's batch)."""
    return dict(logger.thread_safe_get_current_keys())


@contextmanager
def carried(keys: dict[str, Any], **more: Any) -> Iterator[None]:
    """In a thread doing part of an invocation's work: the invocation's keys, and ``more``, until it is done."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**_present({**keys, **more}))
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
