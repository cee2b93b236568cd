"""Client order ids (issue 20): the trader's own id on every order type, unique per user, filterable, and usable in
place of the order's id."""

from __future__ import annotations

import json

import pytest

from chalicelib.api import views
from chalicelib.api.requests import parse_order, parse_order_list_query
from chalicelib.services import errors as refused
from tests.unit.test_services import World

MARKET = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}


@pytest.fixture
def world():
    return World()


def place(world, user="alice", **fields):
    return world.service.place(user, parse_order(json.dumps({**MARKET, **fields}).encode()).to_command())


def test_a_client_order_id_is_stored_returned_and_finds_the_order(world):
    order = place(world, clientOrderId="bot-7_a")
    assert world.service.by_client_id("alice", "bot-7_a") == order.id
    body = views.Order.of_details(world.service.view("alice", order.id)).model_dump(mode="json")
    assert body["clientOrderId"] == "bot-7_a"
    assert world.orders.events(order.id)[0].data["clientOrderId"] == "bot-7_a"
    page = world.service.page("alice", parse_order_list_query({"clientOrderId": "bot-7_a"}).to_command())
    assert [o.id for o in page.orders] == [order.id]
    assert world.service.page("alice", parse_order_list_query({"clientOrderId": "other"}).to_command()).orders == []


def test_a_taken_client_order_id_answers_409_naming_the_order_and_stores_nothing(world):
    first = place(world, clientOrderId="same")
    with pytest.raises(refused.Conflict, match=first.id) as caught:
        place(world, clientOrderId="same", amountIn="2")
    assert caught.value.fields[0]["field"] == "clientOrderId"
    assert len(world.orders.orders) == 1
    other_user = place(world, user="bob", clientOrderId="same")  # unique per user only
    assert world.service.by_client_id("bob", "same") == other_user.id


def test_every_order_type_takes_a_client_order_id(world):
    limit = world.service.place("alice", parse_order(json.dumps({
        "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": "200",
        "clientOrderId": "l-1"}).encode()).to_command())
    assert limit.client_order_id == "l-1"
    sniper = parse_order(json.dumps({"type": "sniper", "tokenIn": "USDC", "tokenOut": "NEWT", "amountIn": "5",
                                     "expiresAt": "2030-01-01T00:00:00Z", "clientOrderId": "s-1"}).encode())
    assert sniper.to_command().client_order_id == "s-1"


def test_someone_elses_client_order_id_is_not_found(world):
    place(world, clientOrderId="mine")
    with pytest.raises(refused.NotFound):
        world.service.by_client_id("mallory", "mine")


@pytest.mark.parametrize("bad", ["", "x" * 37, "has space", "ünï", "a/b", 5])
def test_a_malformed_client_order_id_is_refused(bad):
    from chalicelib.api.problems import ProblemError

    with pytest.raises((refused.ServiceError, ProblemError)) as caught:
        parse_order(json.dumps({**MARKET, "clientOrderId": bad}).encode())
    assert "clientOrderId" in str(getattr(caught.value, "errors", None) or caught.value.fields)
