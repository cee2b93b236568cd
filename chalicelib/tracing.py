"""X-Ray traces on AWS: Powertools' Tracer. The CDK stack turns active tracing on for every function and the REST
API; each invocation then records a subsegment named after its function, annotated with its keys (``orderId``,
``connectionId``), so that X-Ray finds an order's traces by its id.

The Tracer and the X-Ray SDK behind it load only where Lambda runs with active tracing (``AWS_XRAY_DAEMON_ADDRESS``
is set) and ``POWERTOOLS_TRACE_DISABLED`` is not: loading them costs about 200 ms, which no local cold start and no
untraced function pays. Modules are not patched: the worker's records run in threads of their own, where the SDK
would find no segment to attach to.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes")
    return bool(env.get("AWS_XRAY_DAEMON_ADDRESS")) and not disabled


@functools.cache
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "order-engine"), auto_patch=False)


@contextmanager
def traced(function_name: str, **annotations: Any) -> Iterator[None]:
    """A subsegment for this invocation, with ``annotations`` that have a value; nothing where tracing is off."""
    if not enabled():
        yield
        return
    with _tracer().provider.in_subsegment(name=f"## {function_name}") as subsegment:
        for key, value in annotations.items():
            if value not in (None, ""):
                subsegment.put_annotation(key=key, value=value)
        yield
