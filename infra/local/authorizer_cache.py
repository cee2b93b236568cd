"""API Gateway's authorizer cache: a TOKEN authorizer's policy is cached per token for the authorizer's TTL (Chalice's
``ttl_seconds``; API Gateway's ``authorizerResultTtlInSeconds``), so a trader's next requests within it do not run
the authorizer again. Each request is still checked against the cached policy (a read-only token's cached policy
still refuses a POST), and a refusal (401) is not cached. One cache per API, shared by its environments and emptied
by a deployment, as API Gateway's is per stage."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, ChaliceAuthorizer
from chalice.local import (
    EventType,
    ForbiddenError,
    InvalidAuthorizerError,
    LambdaContext,
    LocalAuthPair,
    LocalGatewayAuthorizer,
)

from .ledger import LAMBDA, Ledger

MAX_ENTRIES = 10_000  # tokens remembered at once; the least recently stored go first


class AuthorizerCache:
    def __init__(self, now: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES):
        self._now = now
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] <= self._now():
                self._entries.pop(key, None)
                self.misses += 1
                return None
            self.hits += 1
            return found[1]

    def put(self, key: tuple[str, str], result: dict[str, Any], ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (self._now() + ttl_seconds, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class CachingAuthorizer(LocalGatewayAuthorizer):
    """Chalice's local authorizer, with API Gateway's cache in front of a TOKEN authorizer's function."""

    def __init__(self, app_object: Chalice, cache: AuthorizerCache, ledger: Ledger | None = None):
        super().__init__(app_object)
        self._cache = cache
        self._ledger = ledger or Ledger(None)

    def authorize(self, raw_path: str, lambda_event: EventType, lambda_context: LambdaContext) -> LocalAuthPair:
        route_entry = self._route_for_event(lambda_event)
        authorizer = route_entry.authorizer if route_entry else None
        ttl = getattr(getattr(authorizer, "config", None), "ttl_seconds", None)
        if not isinstance(authorizer, ChaliceAuthorizer) or not ttl:
            return super().authorize(raw_path, lambda_event, lambda_context)
        arn = self._arn_builder.build_arn(lambda_event["requestContext"]["httpMethod"], raw_path)
        auth_event = self._prepare_authorizer_event(arn, lambda_event, lambda_context)
        key = (authorizer.name, auth_event.get("authorizationToken") or "")
        result = self._cache.get(key) if key[1] else None
        if result is None:
            started = time.perf_counter()
            try:
                result = authorizer(auth_event, lambda_context)  # raises for a 401, which is not cached
            finally:
                self._ledger.record(LAMBDA, authorizer.name, (time.perf_counter() - started) * 1000)
            if result is None:
                raise InvalidAuthorizerError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                              "x-amzn-ErrorType": "AuthorizerConfigurationException"},
                                             b'{"message":null}')
            if key[1]:
                self._cache.put(key, result, ttl)
        if not self._check_can_invoke_view_function(arn, result):
            raise ForbiddenError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                  "x-amzn-ErrorType": "AccessDeniedException"},
                                 b'{"Message": "User is not authorized to access this resource"}')
        return self._update_lambda_event(lambda_event, result), lambda_context
