"""The API's views: each renders what clients have always read, and is the model the OpenAPI document shows."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.api import problems, views
from chalicelib.api.openapi import document
from chalicelib.domain.commands import Limit, PlaceOrder
from chalicelib.domain.limit_orders import TimeInForce
from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.orders import OrderType, Status
from chalicelib.domain.venues import SwapReceipt
from chalicelib.services.read_models import PlacedOrder
from tests.unit.test_services import World


@pytest.fixture
def world():
    return World()


def test_an_order_renders_every_field_with_times_as_the_api_always_wrote_them(world):
    order = world.place()
    world.executor.execute(order.id)
    body = json.loads(views.Order.of_details(world.service.view("alice", order.id)).model_dump_json())
    stored = world.orders.orders[order.id]
    assert list(body) == ["orderId", "type", "status", "tokenIn", "tokenOut", "amountIn", "slippageBps",
                          "createdAt", "updatedAt", "venue", "execution", "failureReason", "side", "limitPrice",
                          "minAmountOut", "timeInForce", "expiresAt", "maxPrice", "delaySeconds", "conditions",
                          "clientOrderId", "routingMode", "events", "routing", "executable", "waitingFor"]
    assert [body[k] for k in ("side", "limitPrice", "minAmountOut", "timeInForce", "expiresAt")] == [None] * 5
    assert body["createdAt"] == stored.created_at.isoformat() and body["createdAt"].endswith("+00:00")
    assert [e["at"] for e in body["events"]] == [e.at.isoformat() for e in world.orders.events(order.id)]
    assert body["execution"] == {"venue": stored.venue, "txSignature": stored.tx_signature,
                                 "amountOut": stored.token_out.format(stored.amount_out),
                                 "minOut": stored.token_out.format(stored.min_out),
                                 "executedPrice": str(stored.executed_price),
                                 "legs": [{"poolId": stored.pool_id, "venue": stored.venue, "tokenIn": "SOL",
                                           "tokenOut": "USDC", "amountIn": "1.5",
                                           "amountOut": stored.token_out.format(stored.amount_out),
                                           "fee": body["execution"]["legs"][0]["fee"]}]}
    assert Decimal(body["execution"]["legs"][0]["fee"]) > 0
    assert body["routing"]["decidedAt"].endswith("+00:00")
    assert body["routingMode"] == "smart" and body["routing"]["gainBps"] == "0"
    assert body["routing"]["otherAmountThreshold"] == body["execution"]["minOut"]
    (leg,) = body["routing"]["routePlan"]
    assert (leg["poolId"], leg["percent"], leg["inAmount"]) == (stored.pool_id, "100", "1.5")
    assert {q["venue"] for q in body["routing"]["quotes"]} == {"raydium", "meteora"}
    assert set(body["routing"]["quotes"][0]) == {"venue", "poolId", "tokenIn", "tokenOut", "amountIn", "amountOut",
                                                 "fee", "priceImpactPct", "error"}
    assert [e["data"] for e in body["events"]] == [e.data for e in world.orders.events(order.id)]


def test_a_limit_order_shows_its_terms(world):
    limit = Limit(TimeInForce.GTD, Decimal("152"), None, world.clock.now() + timedelta(hours=1))
    order = world.service.place("alice", PlaceOrder("SOL", "USDC", Decimal("10"), None, OrderType.LIMIT, limit))
    body = views.Order.of_details(world.service.view("alice", order.id)).model_dump(mode="json")
    assert (body["type"], body["side"], body["limitPrice"], body["minAmountOut"], body["timeInForce"]) == (
        "limit", "sell", "152", "1520", "GTD")
    assert body["expiresAt"] == limit.expires_at.isoformat() and body["slippageBps"] is None


def test_an_order_not_yet_routed_or_filled_renders_nulls_not_missing_fields(world):
    order = world.place()
    body = views.Order.of_details(world.service.view("alice", order.id)).model_dump(mode="json")
    assert (body["venue"], body["execution"], body["failureReason"], body["routing"]) == (None, None, None, None)
    assert body["status"] == "pending" and body["amountIn"] == "1.5"


def test_the_accepted_body_is_the_pending_order_and_nothing_else():
    assert views.OrderAccepted.of(PlacedOrder("o-1", Status.PENDING)).model_dump() == {"orderId": "o-1",
                                                                                         "status": "pending"}
    with pytest.raises(ValueError):
        views.OrderAccepted.of(PlacedOrder("o-1", Status.ROUTING))  # the 202 body only ever says pending


def test_pools_render_each_venues_own_fields():
    pools = views.Pools.of(genesis_pools()).model_dump(mode="json")["pools"]
    raydium = next(p for p in pools if p["venue"] == "raydium")
    meteora = next(p for p in pools if p["venue"] == "meteora")
    listing = {"openTime", "lpBurned"}
    assert set(raydium) == {"id", "venue", "kind", "base", "quote", "price", "feeBps", "reserves"} | listing
    assert raydium["openTime"] == "1970-01-01T00:00:00+00:00" and raydium["lpBurned"] is False
    assert raydium["kind"] == "constant-product" and raydium["feeBps"] == "25"
    assert raydium["reserves"] == {"base": "50000", "quote": "7500000"} and raydium["price"] == "150.000000"
    assert set(meteora) == {"id", "venue", "kind", "base", "quote", "price", "feeBps", "reserves", "binStep",
                            "activeBinId", "bins"} | listing
    assert meteora["kind"] == "dlmm" and meteora["bins"] == 301 and meteora["binStep"] == 10
    assert abs(Decimal(meteora["price"]) - Decimal("149.9")) < Decimal("0.1")


def test_a_swap_renders_base_units_and_its_orders_memo():
    receipt = SwapReceipt("sig", "order-1", "raydium-sol-usdc", "raydium", "SOL", "USDC", 10**9, 149_000_000, 2_500_000,
                          7, datetime(2026, 1, 1, tzinfo=UTC))
    assert views.Swaps.of("order-1", [receipt]).model_dump(mode="json") == {"orderId": "order-1", "swaps": [{
        "signature": "sig", "orderId": "order-1", "poolId": "raydium-sol-usdc", "venue": "raydium", "tokenIn": "SOL",
        "tokenOut": "USDC", "amountIn": "1000000000", "amountOut": "149000000", "fee": "2500000", "slot": 7,
        "executedAt": "2026-01-01T00:00:00+00:00", "legs": [{
            "poolId": "raydium-sol-usdc", "venue": "raydium", "tokenIn": "SOL", "tokenOut": "USDC",
            "amountIn": "1000000000", "amountOut": "149000000", "fee": "2500000"}]}]}


def test_health_lists_what_is_down():
    assert views.Health.of({"postgres": "ok", "redis": "down: ConnectionError"}).model_dump() == {
        "status": "down", "down": ["redis"], "checks": {"postgres": "ok", "redis": "down: ConnectionError"}}


@pytest.mark.parametrize("status", sorted(problems.PROBLEMS_BY_STATUS))
def test_every_problem_the_api_renders_is_the_documented_problem(status):
    kind = problems.PROBLEMS_BY_STATUS[status]
    problem = kind.__new__(kind)  # each kind's own constructor aside: the rendering is the base class's
    problems.ProblemError.__init__(problem, "detail", errors=[{"field": "amountIn", "message": "too precise"}])
    views.Problem.model_validate(problem.to_problem())  # problems.py renders them without pydantic
    assert problem.to_problem()["status"] == status


def test_the_openapi_document_shows_the_models_that_render_the_responses():
    schemas = document()["components"]["schemas"]
    for model in (views.Order, views.OrderPage, views.Quote, views.Pools, views.Swaps, views.Health,
                  views.OrderAccepted, views.Tokens):
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
    created_at = schemas["Order"]["properties"]["createdAt"]
    assert (created_at["type"], created_at["format"]) == ("string", "date-time")
    assert schemas["Pools"]["properties"]["pools"]["items"]["discriminator"]["propertyName"] == "kind"
