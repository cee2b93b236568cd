"""The exceptions that mean a backing service cannot be reached right now (a restart, a failover, a network blip)
rather than a bug: the caller answers 503 and the client, or the queue, tries again."""

from __future__ import annotations

import botocore.exceptions
import psycopg
import redis.exceptions

from .signed_http import Unreachable
from .websocket import PushUnavailable

DEPENDENCY_DOWN: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # also psycopg_pool.PoolTimeout
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.LockError,  # a lock still held by a holder that died: busy for a few seconds, try again
    botocore.exceptions.HTTPClientError,  # connection refused, timeouts
    Unreachable,  # the same, for @connections and sending to SQS
    PushUnavailable,
)
