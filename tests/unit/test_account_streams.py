"""The WebSocket's account and market streams and its cancel (issue 20): every update of every order of the caller
(existing and future, ``order.created`` as each is placed), caught up after a reconnect with ``since``; each pool's
state after every change; a cancel answered like DELETE."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from chalicelib.api.websocket import WebsocketSessions
from chalicelib.auth import Principal
from chalicelib.domain.orders import Status
from chalicelib.services.notifications import REPLAY_MARGIN
from tests.fakes import FakePlacement
from tests.unit.test_services import World

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}


@pytest.fixture
def world():
    return World()


def connect(world, connection_id: str, principal: Principal | None = None) -> WebsocketSessions:
    sessions = WebsocketSessions(world.connections, world.notifier, world.service, world.push,
                                 verify_token=lambda token: principal or Principal("alice"),
                                 placement=FakePlacement(world.service), market=world.engine.market_feed)
    sessions.connect(connection_id, "t")
    return sessions


def send(sessions, connection_id: str, **message) -> None:
    sessions.receive(connection_id, json.dumps(message))


def updates(world, connection_id: str) -> list[tuple[str, int]]:
    return [(f["orderId"], f["seq"]) for f in world.push.frames.get(connection_id, []) if f["type"] == "order.update"]


def every_event(world, user: str = "alice") -> set[tuple[str, int]]:
    return {(order_id, e.seq) for order_id, events in world.orders.event_log.items()
            if world.orders.orders[order_id].user_id == user for e in events}


def test_an_account_stream_gets_open_orders_from_their_start_and_every_order_placed_afterwards(world):
    done = world.place()
    world.executor.execute(done.id)  # confirmed before the stream: not sent without since
    resting = world.service.place("alice", _limit())
    world.executor.execute(resting.id)
    someone_elses = world.place(user="bob")
    sessions = connect(world, "c1")
    send(sessions, "c1", action="subscribeAccount")
    assert world.push.frames["c1"][0] == {"type": "subscribed", "stream": "account", "since": None,
                                          "replayFrom": None}
    assert updates(world, "c1") == [(resting.id, 1), (resting.id, 2)]  # the open limit order, from its start
    placed = world.place()  # over REST, say: the stream is told, then follows it
    world.executor.execute(placed.id)
    created = [f for f in world.push.frames["c1"] if f["type"] == "order.created"]
    assert [(f["orderId"], f["tokenIn"], f["amountIn"]) for f in created] == [(placed.id, "SOL", "1.5")]
    assert [seq for order_id, seq in updates(world, "c1") if order_id == placed.id] == [1, 2, 3, 4, 5]
    assert all(order_id != someone_elses.id for order_id, _ in updates(world, "c1"))
    assert len(updates(world, "c1")) == len(set(updates(world, "c1")))  # nothing twice


def test_a_client_that_reconnects_with_since_mid_burst_gets_every_update_exactly_once_after_dedup(world):
    rng = random.Random(7)
    first = connect(world, "c1")
    send(first, "c1", action="subscribeAccount")
    placed = []

    def burst(count: int) -> None:
        for _ in range(count):
            placed.append(world.place(body={**ORDER, "amountIn": str(rng.choice([0.5, 1, 2]))}).id)
            for order_id in rng.sample(placed, min(3, len(placed))):
                world.executor.execute(order_id)

    burst(80)
    frames = [f for f in world.push.frames["c1"] if f["type"] == "order.update"]
    cursor = frames[-1]["at"]  # the last update it had
    world.connections.remove_connection("c1")  # the connection drops
    burst(60)  # ... while orders go on
    second = connect(world, "c2")
    send(second, "c2", action="subscribeAccount", since=cursor)
    burst(60)
    for order_id in placed:
        world.executor.execute(order_id)
    received = updates(world, "c1") + updates(world, "c2")
    assert set(received) == every_event(world)  # nothing lost
    assert len(updates(world, "c2")) == len(set(updates(world, "c2")))  # the new connection got nothing twice
    # What came again is what the first connection had from REPLAY_MARGIN before its cursor on.
    repeated = set(updates(world, "c1")) & set(updates(world, "c2"))
    margin_start = datetime.fromisoformat(cursor) - REPLAY_MARGIN
    assert repeated and all(world.orders.event_log[o][s - 1].at >= margin_start for o, s in repeated)


def test_an_order_submitted_on_an_account_streams_connection_comes_once(world):
    sessions = connect(world, "c1")
    send(sessions, "c1", action="subscribeAccount")
    send(sessions, "c1", action="submit", order=ORDER)
    order_id = next(f["orderId"] for f in world.push.frames["c1"] if f["type"] == "order.accepted")
    world.executor.execute(order_id)
    assert updates(world, "c1") == [(order_id, seq) for seq in range(1, 6)]


def test_cancel_over_the_socket_answers_like_delete(world):
    sessions = connect(world, "c1")
    resting = world.service.place("alice", _limit())
    world.executor.execute(resting.id)
    send(sessions, "c1", action="cancel", orderId=resting.id)
    answer = world.push.frames["c1"][-1]
    assert (answer["type"], answer["status"], answer["order"]["status"]) == ("order.cancel", 200, "cancelled")
    assert world.orders.orders[resting.id].status is Status.CANCELLED
    done = world.place()
    world.executor.execute(done.id)
    send(sessions, "c1", action="cancel", orderId=done.id)
    refused = world.push.frames["c1"][-1]
    assert refused["type"] == "error" and refused["error"]["status"] == 409 and refused["orderId"] == done.id
    send(sessions, "c1", action="cancel", orderId="not-an-order")
    assert world.push.frames["c1"][-1]["error"]["status"] == 404
    reader = connect(world, "c2", Principal("alice", can_trade=False))
    send(reader, "c2", action="cancel", orderId=done.id)
    assert world.push.frames["c2"][-1]["error"]["status"] == 403


def test_a_market_stream_gets_each_pools_state_then_every_change(world):
    sessions = connect(world, "c1")
    send(sessions, "c1", action="subscribeMarket", poolIds=["raydium-sol-usdc"])
    subscribed, first = world.push.frames["c1"]
    assert subscribed == {"type": "subscribed", "stream": "market", "poolIds": ["raydium-sol-usdc"]}
    assert (first["type"], first["poolId"], first["price"]) == ("pool.update", "raydium-sol-usdc", "150.000000")
    world.venues.swap("other-1", "x", "raydium-sol-usdc", "SOL", "USDC", 100 * 10**9, 0)
    world.venues.swap("other-2", "x", "meteora-sol-usdc", "SOL", "USDC", 100 * 10**9, 0)
    assert world.engine.market_feed.pools_changed(["raydium-sol-usdc", "meteora-sol-usdc"]) == 1
    changed = world.push.frames["c1"][-1]
    assert changed["poolId"] == "raydium-sol-usdc" and changed["slot"] > first["slot"]
    assert float(changed["price"]) < 150 and set(changed["reserves"]) == {"base", "quote"}
    everything = connect(world, "c2")
    send(everything, "c2", action="subscribeMarket")
    assert len([f for f in world.push.frames["c2"] if f["type"] == "pool.update"]) == len(world.venues.by_id)


@pytest.mark.parametrize("message, status, field", [
    ({"action": "subscribeMarket", "poolIds": ["raydium-btc-usdc"]}, 422, "poolIds"),
    ({"action": "subscribeMarket", "poolIds": "raydium-sol-usdc"}, 400, "poolIds"),
    ({"action": "subscribeMarket", "poolIds": []}, 400, "poolIds"),
    ({"action": "subscribeAccount", "since": "yesterday"}, 400, "since"),
    ({"action": "subscribeAccount", "since": "2026-01-01T00:00:00"}, 400, "since"),
    ({"action": "subscribeAccount", "since": 5}, 400, "since"),
    ({"action": "cancel"}, 400, "orderId"),
])
def test_bad_stream_requests_get_an_error_frame_naming_the_field(world, message, status, field):
    sessions = connect(world, "c1")
    sessions.receive("c1", json.dumps(message))
    frame = world.push.frames["c1"][-1]
    assert frame["type"] == "error" and frame["error"]["status"] == status and frame["action"] == message["action"]
    assert frame["error"]["errors"][0]["field"] == field


def _limit():
    from decimal import Decimal

    from chalicelib.domain.commands import Limit, PlaceOrder
    from chalicelib.domain.orders import OrderType

    return PlaceOrder("SOL", "USDC", Decimal("1"), None, OrderType.LIMIT, Limit(limit_price=Decimal("400")))
