"""The local gateway caches a token authorizer's policy per token for its TTL, as API Gateway does: a trader's next
requests skip the authorizer, each is still checked against the cached policy, a refusal is never cached, and a
deployment empties the cache. An injected clock, no patching."""

from __future__ import annotations

import json

from chalice import Chalice
from chalice.app import AuthResponse, AuthRoute
from chalice.config import Config
from chalice.local import LocalGateway

from infra.local.authorizer_cache import AuthorizerCache, CachingAuthorizer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gateway(ttl: int | None = 300):
    app = Chalice(app_name="cache-test")
    calls: list[str] = []

    @app.authorizer(ttl_seconds=ttl)
    def auth(request):
        calls.append(request.token)
        if request.token == "bad":
            raise Exception("Unauthorized")
        routes = ["*"] if request.token != "reader" else [AuthRoute("*", ["GET"])]
        return AuthResponse(routes=routes, principal_id=request.token)

    @app.route("/orders", methods=["GET", "POST"], authorizer=auth)
    def orders():
        return {"user": app.current_request.context["authorizer"]["principalId"]}

    clock = Clock()
    cache = AuthorizerCache(now=clock)
    local = LocalGateway(app, Config())
    local._authorizer = CachingAuthorizer(app, cache)
    return local, calls, clock, cache


def call(local, method: str, token: str):
    return local.handle_request(method, "/orders", {"Authorization": token, "Host": "localhost"}, b"")


def test_a_tokens_policy_is_cached_for_the_ttl_then_asked_again():
    local, calls, clock, cache = gateway()
    for _ in range(3):
        assert json.loads(call(local, "GET", "alice")["body"]) == {"user": "alice"}
    assert calls == ["alice"] and (cache.hits, cache.misses) == (2, 1)
    call(local, "GET", "bob")  # another token: its own entry
    assert calls == ["alice", "bob"]
    clock.now += 300
    call(local, "GET", "alice")
    assert calls == ["alice", "bob", "alice"]  # expired: asked again


def test_the_cached_policy_still_decides_each_request_and_a_refusal_is_not_cached():
    local, calls, clock, cache = gateway()
    assert call(local, "GET", "reader")["statusCode"] == 200
    try:
        call(local, "POST", "reader")
        raise AssertionError("a read-only token's cached policy must refuse a POST")
    except Exception as refused:  # Chalice's ForbiddenError (403)
        assert getattr(refused, "CODE", None) == 403
    assert calls == ["reader"]  # decided on the cached policy
    for _ in range(2):
        try:
            call(local, "GET", "bad")
        except Exception as error:
            assert str(error) == "Unauthorized"
    assert calls == ["reader", "bad", "bad"]  # a 401 is asked again every time
    cache.clear()  # a deployment
    call(local, "GET", "reader")
    assert calls[-1] == "reader" and len(calls) == 4


def test_without_a_ttl_the_authorizer_runs_on_every_request():
    local, calls, _, _ = gateway(ttl=None)
    call(local, "GET", "alice")
    call(local, "GET", "alice")
    assert calls == ["alice", "alice"]


def test_the_cache_keeps_at_most_its_size_forgetting_the_oldest():
    clock = Clock()
    cache = AuthorizerCache(now=clock, max_entries=2)
    for token in ("a", "b", "c"):
        cache.put(("auth", token), {"principalId": token}, 300)
    assert cache.get(("auth", "a")) is None and cache.get(("auth", "c")) == {"principalId": "c"}
