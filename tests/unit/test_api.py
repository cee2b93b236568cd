"""The full API's use cases with hand-written fakes: listing, cancelling, quotes, limits, WebSocket submit, the HTTP
guard and the OpenAPI document."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from chalice import Chalice
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api import views
from chalicelib.api.http import guard
from chalicelib.api.problems import TooManyRequests, Unprocessable
from chalicelib.api.requests import OrderListQuery, parse_order, parse_order_list_query, parse_quote_query
from chalicelib.api.websocket import WebsocketSessions
from chalicelib.auth import Principal, issue_token, verify_principal
from chalicelib.domain.limits import TokenBucket
from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.orders import Status
from chalicelib.domain.routing import choose_route, min_out
from chalicelib.domain.tokens import TOKENS
from chalicelib.services import errors as refused
from chalicelib.services.market import Market
from tests.fakes import FakePlacement, FakeRateLimiter, FakeVenues, pool_quotes
from tests.unit.test_services import FULL, World, rendered

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}


@pytest.fixture
def world():
    return World()  # its order service streams a cancel to the order's subscribers, as the engine's does


# Cancelling -----------------------------------------------------------------------------------------------------

def test_a_pending_order_is_cancelled_its_subscribers_see_it_and_its_queued_message_executes_nothing(world):
    order = world.place()
    world.connections.add_connection("c1", "alice")
    world.notifier.subscribe("c1", order.id)
    view = rendered(world.service.cancel("alice", order.id))
    assert view["status"] == "cancelled" and view["events"][-1]["data"]["previousStatus"] == "pending"
    assert world.push.statuses("c1") == ["pending", "cancelled"]
    assert world.queue.sent == [order.id]  # its message is still queued...
    assert world.executor.execute(order.id) is Status.CANCELLED  # ...and executes nothing
    assert world.venues.swap_calls == 0 and world.statuses(order.id) == ["pending", "cancelled"]


@pytest.mark.parametrize("cancel_when", ["routing", "building"])
def test_a_cancel_that_lands_while_the_worker_routes_or_builds_stops_the_worker_before_any_swap(world, cancel_when):
    order = world.place()
    route_pools, advance = world.venues.route_pools, world.orders.transition

    def quote_then_cancel(*args):
        pools = route_pools(*args)
        if cancel_when == "routing":
            world.service.cancel("alice", order.id)
        return pools

    def transition_then_cancel(order_id, expected, new, *args, **kwargs):
        event = advance(order_id, expected, new, *args, **kwargs)
        if new is Status.BUILDING and cancel_when == "building":
            world.service.cancel("alice", order.id)
        return event

    world.venues.route_pools = quote_then_cancel
    world.orders.transition = transition_then_cancel
    assert world.executor.execute(order.id) is None  # the worker found the order changed and stopped
    assert world.orders.orders[order.id].status is Status.CANCELLED
    assert world.venues.swap_calls == 0
    assert world.executor.execute(order.id) is Status.CANCELLED  # a redelivery does nothing either


def test_an_order_submitted_or_ended_cannot_be_cancelled_and_cancelling_twice_is_harmless(world):
    done = world.place()
    world.executor.execute(done.id)
    with pytest.raises(refused.Conflict, match="already ended"):
        world.service.cancel("alice", done.id)
    submitted = world.place()
    world.orders.orders[submitted.id] = world.orders.orders[submitted.id].__class__(
        **{**world.orders.orders[submitted.id].__dict__, "status": Status.SUBMITTED, "venue": "raydium"})
    with pytest.raises(refused.Conflict, match="submitted to raydium"):
        world.service.cancel("alice", submitted.id)
    pending = world.place()
    world.service.cancel("alice", pending.id)
    assert rendered(world.service.cancel("alice", pending.id))["status"] == "cancelled"
    assert len(world.orders.events(pending.id)) == 2


def test_another_users_order_cannot_be_seen_or_cancelled(world):
    order = world.place(user="alice")
    for call in (world.service.view, world.service.cancel):
        with pytest.raises(refused.NotFound):
            call("mallory", order.id)
    assert world.orders.orders[order.id].status is Status.PENDING


# Listing --------------------------------------------------------------------------------------------------------

def test_pages_list_the_callers_orders_newest_first_each_once(world):
    mine = [world.place().id for _ in range(7)]
    world.place(user="bob")
    seen, cursor = [], None
    while True:
        page = rendered(world.service.page("alice", OrderListQuery(limit=3, cursor=cursor).to_command()))
        seen += [o["orderId"] for o in page["orders"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))


def test_pages_filter_by_status_and_type(world):
    done, waiting = world.place(), world.place()
    world.executor.execute(done.id)
    page = rendered(world.service.page("alice", parse_order_list_query({"status": "confirmed,failed",
                                                                       "type": "market"}).to_command()))
    assert [o["orderId"] for o in page["orders"]] == [done.id]
    assert page["orders"][0]["execution"]["venue"] == page["orders"][0]["venue"]
    pending = rendered(world.service.page("alice", parse_order_list_query({"status": "pending"}).to_command()))
    assert [o["orderId"] for o in pending["orders"]] == [waiting.id]


@pytest.mark.parametrize("cursor", ["abc", "W10", "!!!", "WyJ4IiwieSJd"])
def test_a_cursor_this_api_did_not_issue_is_a_bad_request(world, cursor):
    with pytest.raises(refused.Malformed):
        world.service.page("alice", OrderListQuery(cursor=cursor).to_command())


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "done"},
                                   {"type": "stop-loss"}, {"status": ""}, {"colour": "red"}])
def test_bad_list_queries_name_the_parameter(query):
    with pytest.raises(Unprocessable) as caught:
        parse_order_list_query(query)
    assert caught.value.errors[0]["field"].split(".")[0] in query


# Venue data -----------------------------------------------------------------------------------------------------

def test_a_quote_is_the_route_the_worker_would_take_and_executes_nothing(world):
    market = Market(world.venues, world.clock)
    quote = rendered(market.quote(parse_quote_query({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2",
                                                     "slippageBps": "100"}).to_command()))
    decision = choose_route(pool_quotes(world.venues, "SOL", "USDC", 2 * 10**9, int(world.clock.current.timestamp())))
    assert quote["venue"] == decision.chosen.venue and len(quote["quotes"]) == 2
    assert quote["outAmount"] == TOKENS["USDC"].format(decision.chosen.amount_out)
    assert quote["minOut"] == TOKENS["USDC"].format(min_out(decision.chosen.amount_out, 100))
    assert quote["otherAmountThreshold"] == quote["minOut"] and quote["routing"] == "smart"
    (leg,) = quote["routePlan"]  # 2 SOL: a split would not gain 1 bp
    assert (leg["venue"], leg["poolId"], leg["percent"]) == (decision.chosen.venue, decision.chosen.pool_id, "100")
    assert leg["outAmount"] == quote["outAmount"] and quote["gainBps"] == "0"
    assert world.venues.swap_calls == 0 and world.orders.orders == {}


def test_a_quote_no_venue_can_fill_is_unprocessable(world):
    with pytest.raises(refused.Invalid, match="no venue can fill"):
        Market(FakeVenues([], world.clock), world.clock).quote(parse_quote_query({"tokenIn": "SOL", "tokenOut": "USDC",
                                                                     "amountIn": "1"}).to_command())


def test_tokens_and_pools_describe_both_venues(world):
    market = Market(FakeVenues(genesis_pools(), world.clock), world.clock)
    tokens = views.Tokens.of(market.tokens()).model_dump(mode="json")
    assert {t["symbol"]: t["decimals"] for t in tokens["tokens"]} == {"SOL": 9, "USDC": 6, "USDT": 6, "JUP": 6}
    assert {t["symbol"]: t["mintAuthority"] for t in tokens["tokens"]}["USDC"] == "active"
    pools = views.Pools.of(market.pools()).model_dump(mode="json")["pools"]
    assert {p["kind"] for p in pools} == {"constant-product", "dlmm"}
    sol_usdc = {p["venue"]: Decimal(p["price"]) for p in pools if (p["base"], p["quote"]) == ("SOL", "USDC")}
    assert abs(sol_usdc["raydium"] - 150) < 1 and abs(sol_usdc["meteora"] - Decimal("149.9")) < 1


# Limits ---------------------------------------------------------------------------------------------------------

def test_a_token_bucket_lets_a_burst_through_then_refills_at_its_rate():
    bucket, tokens, now = TokenBucket(rate=2, burst=3), 3.0, 0
    for _ in range(3):
        tokens, wait = bucket.take(tokens, now, now)
        assert wait == 0
    tokens, wait = bucket.take(tokens, now, now)
    assert wait == 500  # one token more comes after half a second
    tokens, wait = bucket.take(tokens, now, now + 500)
    assert wait == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2_000), min_size=1, max_size=80),
       st.floats(min_value=0.5, max_value=50), st.integers(min_value=1, max_value=20))
def test_a_token_bucket_never_allows_more_than_its_burst_plus_its_rate(gaps, rate, burst):
    bucket, tokens, last, now, allowed = TokenBucket(rate, burst), float(burst), 0, 0, 0
    for gap in gaps:
        now += gap
        tokens, wait = bucket.take(tokens, last, now)
        last = now
        allowed += wait == 0
    assert allowed <= burst + rate * now / 1000 + 1e-9


def test_a_user_over_the_websocket_connection_limit_is_refused_until_one_closes(world):
    sessions = WebsocketSessions(world.connections, world.notifier, world.service, world.push,
                                 verify_token=lambda token: Principal("alice"), max_connections_per_user=2)
    sessions.connect("c1", "t")
    sessions.connect("c2", "t")
    with pytest.raises(TooManyRequests) as refused:
        sessions.connect("c3", "t")
    assert refused.value.headers["Retry-After"] == "1"
    sessions.disconnect("c1")
    sessions.connect("c3", "t")


# WebSocket submit -----------------------------------------------------------------------------------------------

def _sessions(world, principal=None, limiter=None):
    principal = principal or Principal("alice")
    placement = FakePlacement(world.service)
    options = {"rate_limiter": limiter} if limiter else {}
    sessions = WebsocketSessions(world.connections, world.notifier, world.service, world.push,
                                 verify_token=lambda token: principal, placement=placement, **options)
    sessions.connect("c1", "t")
    return sessions


def test_submit_places_an_order_and_streams_it_on_the_same_connection(world):
    sessions = _sessions(world)
    sessions.receive("c1", json.dumps({"action": "submit", "order": ORDER, "idempotencyKey": "k-1"}))
    accepted = world.push.frames["c1"][0]
    assert accepted["type"] == "order.accepted" and accepted["idempotencyKey"] == "k-1"
    world.executor.execute(accepted["orderId"])
    assert world.push.statuses("c1") == FULL
    sessions.receive("c1", json.dumps({"action": "submit", "order": ORDER, "idempotencyKey": "k-1"}))
    assert world.push.frames["c1"][-len(FULL) - 1]["orderId"] == accepted["orderId"]  # the same order, replayed
    assert len(world.orders.orders) == 1


@pytest.mark.parametrize("message, status, field", [
    ({"action": "submit"}, 422, "order"),
    ({"action": "submit", "order": {**ORDER, "amountIn": "-1"}}, 422, "order.amountIn"),
    ({"action": "submit", "order": {**ORDER, "tokenOut": "SOL"}}, 422, "tokenOut"),
    ({"action": "submit", "order": ORDER, "price": 1}, 422, "price"),
    ({"action": "submit", "order": "SOL->USDC"}, 422, "order"),
    ({"action": "submit", "order": ORDER, "idempotencyKey": ""}, 422, "idempotencyKey"),
])
def test_a_bad_submit_gets_an_error_frame_naming_the_field_and_places_nothing(world, message, status, field):
    sessions = _sessions(world)
    sessions.receive("c1", json.dumps(message))
    (frame,) = world.push.frames["c1"]
    assert frame["type"] == "error" and frame["action"] == "submit" and frame["error"]["status"] == status
    assert any(field in e["field"] for e in frame["error"]["errors"])
    assert world.orders.orders == {}


def test_a_read_only_token_may_subscribe_but_not_submit(world):
    sessions = _sessions(world, principal=Principal("alice", can_trade=False))
    sessions.receive("c1", json.dumps({"action": "submit", "order": ORDER}))
    assert world.push.frames["c1"][-1]["error"]["status"] == 403 and world.orders.orders == {}
    order = world.place()
    sessions.receive("c1", json.dumps({"action": "subscribe", "orderId": order.id}))
    assert world.push.statuses("c1") == ["pending"]


def test_websocket_requests_over_the_rate_limit_get_429_frames(world):
    limiter = FakeRateLimiter(TokenBucket(rate=1, burst=2), world.clock)
    sessions = _sessions(world, limiter=limiter)
    for _ in range(3):
        sessions.receive("c1", json.dumps({"action": "submit", "order": ORDER}))
    assert [f.get("type") for f in world.push.frames["c1"]].count("order.accepted") == 2
    assert world.push.frames["c1"][-1]["error"]["status"] == 429
    sessions.receive("c1", json.dumps({"action": "ping"}))  # ping is never limited
    assert world.push.frames["c1"][-1] == {"type": "pong"}


# Tokens ---------------------------------------------------------------------------------------------------------

SECRET = "a-test-secret-long-enough-for-hs256-keys"


def test_a_token_scoped_to_reading_may_not_trade():
    assert verify_principal(issue_token("alice", SECRET), SECRET) == Principal("alice", True)
    assert verify_principal(issue_token("alice", SECRET, scope="orders:read"), SECRET).can_trade is False
    assert verify_principal(issue_token("alice", SECRET, scope="orders:read orders:write"), SECRET).can_trade


# The HTTP guard ---------------------------------------------------------------------------------------------------

def _guarded_app(world, limiter):
    app = Chalice("guarded")

    @app.middleware("http")
    def _guard(request, get_response):
        return guard(request, get_response, limiter)

    @app.route("/orders", methods=["POST"], content_types=["application/json"])
    def place():
        parse_order(app.current_request.raw_body)
        return {"ok": True}

    @app.route("/health")
    def health():
        return {"status": "ok"}

    return app


def test_the_guard_answers_413_429_and_chalices_own_415_and_405_as_problems(world):
    limiter = FakeRateLimiter(TokenBucket(rate=1, burst=2), world.clock)  # the 415 and the 405 take both
    with Client(_guarded_app(world, limiter)) as client:
        big = client.http.post("/orders", headers={"Content-Type": "application/json"}, body=b"{" + b" " * 70_000)
        assert big.status_code == 413 and big.headers["Content-Type"] == "application/problem+json"
        text = client.http.post("/orders", headers={"Content-Type": "text/plain"}, body=json.dumps(ORDER))
        assert text.status_code == 415 and json.loads(text.body)["title"] == "Unsupported Media Type"
        wrong = client.http.put("/orders", headers={"Content-Type": "application/json"}, body=b"{}")
        assert wrong.status_code == 405 and json.loads(wrong.body)["status"] == 405
        limited = client.http.post("/orders", headers={"Content-Type": "application/json"}, body=json.dumps(ORDER))
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        assert json.loads(limited.body)["type"].endswith("/too-many-requests")
        assert client.http.get("/health").status_code == 200  # monitoring is never limited
        world.clock.current += timedelta(seconds=1)
        assert client.http.post("/orders", headers={"Content-Type": "application/json"},
                                body=json.dumps(ORDER)).status_code == 200


# The OpenAPI document --------------------------------------------------------------------------------------------

def test_the_openapi_document_describes_every_route_of_the_app_and_no_other():
    from app import app  # importing app.py connects to nothing
    from chalicelib.api.openapi import document

    routes = {(path.replace("{order_id}", "{orderId}").replace("{client_order_id}", "{clientOrderId}"), method.lower())
              for path, methods in app.routes.items() for method in methods}
    documented = {(path, method) for path, operations in document()["paths"].items() for method in operations}
    assert documented == routes
    assert document()["openapi"] == "3.1.0"


def test_the_openapi_request_schema_is_the_validating_models():
    from chalicelib.api.openapi import document

    order = document()["components"]["schemas"]["MarketOrderRequest"]
    assert order["additionalProperties"] is False
    assert set(order["properties"]) == {"type", "tokenIn", "tokenOut", "amountIn", "slippageBps", "routing",
                                        "clientOrderId"}
    assert (order["properties"]["slippageBps"]["minimum"], order["properties"]["slippageBps"]["maximum"]) == (1, 5000)


def test_location_is_behind_api_gateways_stage_prefix():
    from chalicelib.api.http import created_location

    assert created_location({"path": "/api/orders", "stage": "api"}, "o-1") == "/api/orders/o-1"  # execute-api
    assert created_location({"path": "/orders"}, "o-1") == "/orders/o-1"  # the local cloud, a custom domain
    assert created_location({"path": "/v1/orders/"}, "o-1") == "/v1/orders/o-1"  # a base path mapping
    assert created_location(None, "o-1") == "/orders/o-1"


def test_only_the_api_layer_gives_a_use_cases_refusal_its_status_and_headers():
    from chalicelib.api.problems import problem_for

    cases = [(refused.Malformed("bad cursor"), 400, {}), (refused.Unauthenticated("no token"), 401, {}),
             (refused.NotAllowed("read-only"), 403, {}), (refused.NotFound("no such order"), 404, {}),
             (refused.Conflict("too late"), 409, {}), (refused.Invalid("bad amount", [{"field": "amountIn"}]), 422, {}),
             (refused.TooMany("slow down", retry_after_seconds=3), 429, {"Retry-After": "3"}),
             (refused.Unavailable("queue down", retry_after_seconds=1), 503, {"Retry-After": "1"}),
             (refused.Unavailable("queue down"), 503, {})]
    for error, status, headers in cases:
        problem = problem_for(error)
        assert (problem.status, problem.headers, problem.detail) == (status, headers, error.detail)
        assert problem.errors == error.fields
