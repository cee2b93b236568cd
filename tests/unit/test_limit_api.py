"""Limit orders at the API: the body as traders write it, every bad term refused naming its field, and an open
order answering why it has not filled yet."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.api import views
from chalicelib.api.problems import Unprocessable
from chalicelib.api.requests import parse_order
from chalicelib.domain.limit_orders import TimeInForce
from chalicelib.domain.orders import OrderType, Status
from chalicelib.services import errors as refused
from tests.unit.test_services import World

LIMIT = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "10", "limitPrice": "152"}
SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def test_a_limit_order_as_traders_write_it_becomes_the_command():
    command = parse_order(json.dumps({**LIMIT, "timeInForce": "GTD", "expiresAt": SOON}).encode()).to_command()
    assert command.type is OrderType.LIMIT and command.slippage_bps is None
    assert command.limit is not None and command.limit.time_in_force is TimeInForce.GTD
    assert str(command.limit.limit_price) == "152" and command.limit.expires_at == datetime.fromisoformat(SOON)
    default = parse_order(json.dumps(LIMIT).encode()).to_command()
    assert default.limit is not None and default.limit.time_in_force is TimeInForce.GTC


@pytest.mark.parametrize("change, field", [
    ({"minAmountOut": "1520"}, "limitPrice"),  # both
    ({"limitPrice": None}, "limitPrice"),  # neither
    ({"limitPrice": "0"}, "limitPrice"),
    ({"limitPrice": "-152"}, "limitPrice"),
    ({"limitPrice": -1}, "limitPrice"),
    ({"limitPrice": "1e3"}, "limitPrice"),  # digits only, as every amount
    ({"timeInForce": "DAY"}, "timeInForce"),
    ({"timeInForce": "GTC", "expiresAt": SOON}, "expiresAt"),
    ({"timeInForce": "IOC", "expiresAt": SOON}, "expiresAt"),
    ({"timeInForce": "FOK", "expiresAt": SOON}, "expiresAt"),
    ({"timeInForce": "GTD"}, "expiresAt"),
    ({"timeInForce": "GTD", "expiresAt": "2026-12-01T12:00:00"}, "expiresAt"),  # no timezone
    ({"timeInForce": "GTD", "expiresAt": "tomorrow"}, "expiresAt"),
    ({"slippageBps": 100}, "slippageBps"),
])
def test_bad_limit_terms_are_refused_naming_the_field(change, field):
    body = {k: v for k, v in {**LIMIT, **change}.items() if v is not None}
    with pytest.raises(Unprocessable) as caught:
        parse_order(json.dumps(body).encode())
    assert field in [e["field"] for e in caught.value.errors], caught.value.errors


@pytest.fixture
def world():
    return World()


@pytest.mark.parametrize("change, field", [
    ({"limitPrice": "152.0000001"}, "limitPrice"),  # USDC has 6 decimals
    ({"timeInForce": "GTD", "expiresAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}, "expiresAt"),
    ({"timeInForce": "GTD", "expiresAt": (datetime.now(UTC) + timedelta(days=31)).isoformat()}, "expiresAt"),
    ({"limitPrice": None, "minAmountOut": "99999999999"}, "minAmountOut"),  # more than every pool holds
    ({"limitPrice": "99999999"}, "limitPrice"),
])
def test_terms_checked_against_the_clock_and_the_pools_are_refused_naming_the_field(world, change, field):
    world.clock.current = datetime.now(UTC)
    body = {k: v for k, v in {**LIMIT, **change}.items() if v is not None}
    with pytest.raises(refused.Invalid) as caught:
        world.service.place("alice", parse_order(json.dumps(body).encode()).to_command())
    assert caught.value.fields[0]["field"] == field
    assert world.orders.orders == {} and world.queue.sent == []


def test_an_open_order_says_how_far_the_venues_are_from_its_limit(world):
    order = world.service.place("alice", parse_order(json.dumps({**LIMIT, "limitPrice": "160"}).encode())
                                .to_command())
    world.executor.execute(order.id)
    details = world.service.view("alice", order.id)
    assert details.order.status is Status.OPEN and details.executable is not None
    body = views.Order.of_details(details).model_dump(mode="json")
    executable = body["executable"]
    assert executable["requiredOut"] == "1600" and float(executable["quotedOut"]) < 1600
    assert 300 < float(executable["shortfallBps"]) < 700  # about 149.7 against 160
    filled = world.service.place("alice", parse_order(json.dumps({**LIMIT, "limitPrice": "140"}).encode())
                                 .to_command())
    world.executor.execute(filled.id)
    assert world.service.view("alice", filled.id).executable is None  # only an open order has one
