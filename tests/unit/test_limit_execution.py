"""Limit orders through the worker's use case, on fakes: resting, triggering, racing the price, expiring, and never
filling below the limit."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.commands import Limit, PlaceOrder
from chalicelib.domain.limit_orders import TimeInForce
from chalicelib.domain.orders import OrderType, Status, transaction_signature
from chalicelib.domain.venues import VenueUnavailable
from chalicelib.services import errors as refused
from chalicelib.services.execution import RetryLater
from tests.fakes import pool_quotes
from tests.unit.test_services import World

FILLED = ["pending", "open", "triggered", "routing", "building", "submitted", "confirmed"]


@pytest.fixture
def world():
    return World()


def place(world, amount="10", price=None, least=None, tif=TimeInForce.GTC, expires_at=None, token_in="SOL",
          token_out="USDC", order_id=None):
    limit = Limit(tif, None if price is None else Decimal(price), None if least is None else Decimal(least),
                  expires_at)
    return world.service.place("alice", PlaceOrder(token_in, token_out, Decimal(amount), None, OrderType.LIMIT, limit),
                               order_id)


def best_out(world, token_in, token_out, amount):
    now = int(world.clock.current.timestamp())
    return max(q.amount_out for q in pool_quotes(world.venues, token_in, token_out, amount, now) if q.error is None)


def push_sol_price_up(world, usdc=2_000_000):
    """Another trader buys SOL on every SOL/USDC pool: the price of SOL rises."""
    for pool_id in ("raydium-sol-usdc", "meteora-sol-usdc"):
        world.venues.swap(f"other-{uuid.uuid4()}", "another trader", pool_id, "USDC", "SOL", usdc * 10**6, 0)


def test_a_sell_above_the_market_rests_open_and_swaps_nothing(world):
    order = place(world, price="160")
    assert world.executor.execute(order.id) is Status.OPEN
    assert world.statuses(order.id) == ["pending", "open"]
    opened = world.orders.events(order.id)[-1].data
    assert opened == {"side": "sell", "limitPrice": "160", "minAmountOut": "1600", "timeInForce": "GTC",
                      "expiresAt": (order.created_at + timedelta(days=30)).isoformat()}
    assert world.venues.ledger == {}
    assert world.executor.execute(order.id) is Status.OPEN  # a recheck at the same price changes nothing
    assert world.statuses(order.id) == ["pending", "open"]


def test_a_limit_the_venues_can_fill_at_once_fills_at_or_above_it(world):
    order = place(world, price="140")
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.statuses(order.id) == FILLED
    triggered = world.orders.events(order.id)[2].data
    assert triggered["cause"] == "placed" and triggered["requiredOut"] == "1400"
    done = world.orders.get(order.id)
    assert done.min_out == 1400 * 10**6 and done.amount_out >= done.min_out  # the swap's own minimum is the limit


def test_a_resting_order_fills_when_another_traders_swaps_move_the_price(world):
    order = place(world, price="152")
    assert world.executor.execute(order.id) is Status.OPEN
    push_sol_price_up(world)
    assert best_out(world, "SOL", "USDC", order.amount_in) >= 1520 * 10**6
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.statuses(order.id) == FILLED
    assert world.orders.get(order.id).amount_out >= 1520 * 10**6


def test_a_buy_rests_until_the_price_falls_to_its_limit(world):
    order = place(world, amount="1480", price="148", token_in="USDC", token_out="SOL")  # at most 148 USDC per SOL
    assert world.executor.execute(order.id) is Status.OPEN
    for pool_id in ("raydium-sol-usdc", "meteora-sol-usdc"):  # someone sells SOL
        world.venues.swap(f"other-{uuid.uuid4()}", "another trader", pool_id, "SOL", "USDC", 12_000 * 10**9, 0)
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.orders.get(order.id).amount_out >= 10 * 10**9  # at least 10 SOL for 1,480 USDC


def test_a_price_that_moves_back_before_routing_returns_the_order_to_open_never_failed(world):
    order = place(world, price="140")
    real_route_pools = world.venues.route_pools
    calls = []

    def quote_then_the_price_falls(*args):
        calls.append(args)
        quotes = real_route_pools(*args)
        if len(calls) == 1:  # right after the trigger's check: a big sale lands before routing
            for pool_id in ("raydium-sol-usdc", "meteora-sol-usdc"):
                world.venues.swap(f"other-{uuid.uuid4()}", "x", pool_id, "SOL", "USDC", 20_000 * 10**9, 0)
        return quotes

    world.venues.route_pools = quote_then_the_price_falls
    assert world.executor.execute(order.id) is Status.OPEN
    assert world.statuses(order.id) == ["pending", "open", "triggered", "routing", "open"]
    reopened = world.orders.events(order.id)[-1].data
    assert reopened["requiredOut"] == "1400" and Decimal(reopened["quotedOut"]) < 1400
    assert not any(r.memo == order.id for r in world.venues.ledger.values())


def test_a_swap_refused_below_the_limit_rests_again_and_fills_later_under_a_new_signature(world):
    order = place(world, price="140")
    world.venues.move_price_before_swap = 20_000 * 10**9  # someone sells first: the swap would fill below 140
    assert world.executor.execute(order.id) is Status.OPEN
    assert world.statuses(order.id) == ["pending", "open", "triggered", "routing", "building", "submitted", "open"]
    first = world.orders.get(order.id).tx_signature
    assert first in world.venues.failed and first != transaction_signature(order.id)
    world.venues.move_price_before_swap = 0
    push_sol_price_up(world, usdc=4_000_000)  # and the price comes back
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    assert done.tx_signature != first and done.amount_out >= 1400 * 10**6
    assert [r.memo for r in world.venues.ledger.values()].count(order.id) == 1


def test_fok_fills_all_or_expires_with_nothing(world):
    fills = place(world, price="140", tif=TimeInForce.FOK)
    assert world.executor.execute(fills.id) is Status.CONFIRMED
    assert world.statuses(fills.id) == ["pending", "routing", "building", "submitted", "confirmed"]
    too_dear = place(world, price="160", tif=TimeInForce.FOK)
    assert world.executor.execute(too_dear.id) is Status.EXPIRED
    assert world.statuses(too_dear.id) == ["pending", "routing", "expired"]
    assert "not all of it" in world.orders.events(too_dear.id)[-1].data["reason"]
    assert not any(r.memo == too_dear.id for r in world.venues.ledger.values())


def test_ioc_fills_the_part_the_limit_allows_and_drops_the_rest(world):
    order = place(world, amount="3000", price="149.3", tif=TimeInForce.IOC)  # all 3,000 SOL would average 148.79
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    assert 0 < done.fill_amount_in < done.amount_in
    (receipt,) = [r for r in world.venues.ledger.values() if r.memo == order.id]
    assert receipt.amount_in == done.fill_amount_in
    assert receipt.amount_out * done.amount_in >= done.limit.min_amount_out * done.fill_amount_in  # never below
    confirmed = world.orders.events(order.id)[-1].data
    assert Decimal(confirmed["filledAmountIn"]) + Decimal(confirmed["unfilledAmountIn"]) == 3000


def test_ioc_with_nothing_fillable_expires(world):
    order = place(world, price="170", tif=TimeInForce.IOC)
    assert world.executor.execute(order.id) is Status.EXPIRED
    assert "nothing could be filled" in world.orders.events(order.id)[-1].data["reason"]
    assert world.venues.ledger == {}


def test_gtd_expires_at_its_time_and_its_swap_could_never_land_after_it(world):
    order = place(world, price="160", tif=TimeInForce.GTD, expires_at=world.clock.now() + timedelta(seconds=30))
    with pytest.raises(RetryLater) as kept:  # its message comes back when its time ends
        world.executor.execute(order.id)
    assert kept.value.delay_seconds == 30 and world.orders.get(order.id).status is Status.OPEN
    world.clock.current += timedelta(seconds=31)
    assert world.executor.execute(order.id) is Status.EXPIRED
    assert world.statuses(order.id) == ["pending", "open", "expired"]
    fillable = place(world, price="140", tif=TimeInForce.GTD, expires_at=world.clock.now() + timedelta(seconds=20))
    assert world.executor.execute(fillable.id) is Status.CONFIRMED
    assert world.orders.get(fillable.id).valid_until <= fillable.limit.expires_at  # capped by the expiry


def test_a_gtd_ending_later_lets_its_message_go_and_the_sweeper_sends_one_as_the_time_nears(world):
    order = place(world, price="160", tif=TimeInForce.GTD, expires_at=world.clock.now() + timedelta(hours=2))
    assert world.executor.execute(order.id) is Status.OPEN  # no RetryLater: its message is deleted
    world.engine.sweeper.sweep()
    assert world.queue.timers == []  # two hours away
    world.clock.current += timedelta(hours=2) - timedelta(seconds=90)
    world.engine.sweeper.sweep()
    assert world.queue.timers == [(order.id, 90)]
    world.clock.current += timedelta(seconds=91)
    assert world.executor.execute(order.id) is Status.EXPIRED


def test_the_sweeper_rechecks_resting_orders_a_lost_pool_event_would_have_woken(world):
    order = place(world, price="152")
    world.executor.execute(order.id)
    push_sol_price_up(world)  # and its pool event was lost
    assert world.engine.sweeper.sweep().rechecked_triggered == 1
    assert world.orders.get(order.id).status is Status.TRIGGERED
    assert world.executor.execute(order.id) is Status.CONFIRMED


def test_an_open_order_cancelled_never_triggers(world):
    order = place(world, price="160")
    world.executor.execute(order.id)
    world.service.cancel("alice", order.id)
    push_sol_price_up(world, usdc=4_000_000)
    assert world.executor.execute(order.id) is Status.CANCELLED
    assert world.statuses(order.id) == ["pending", "open", "cancelled"]


def test_a_repeat_with_another_limit_under_the_same_key_is_refused(world):
    order_id = str(uuid.uuid4())
    place(world, price="160", order_id=order_id)
    assert place(world, price="160.0", order_id=order_id).id == order_id
    with pytest.raises(refused.Invalid):
        place(world, price="161", order_id=order_id)
    with pytest.raises(refused.Invalid):
        place(world, price="160", tif=TimeInForce.FOK, order_id=order_id)


def test_terms_a_limit_order_may_not_have_are_refused_naming_the_field(world):
    with pytest.raises(refused.Invalid) as caught:
        place(world, price="160", least="1600")
    assert caught.value.fields[0]["field"] == "limitPrice"
    with pytest.raises(refused.Invalid) as caught:
        place(world, price="160", tif=TimeInForce.GTD)
    assert caught.value.fields[0]["field"] == "expiresAt"
    assert world.orders.orders == {} and world.queue.sent == []


def test_an_order_whose_time_ends_while_its_swap_is_retried_expires_and_is_never_signed_again(world):
    order = place(world, price="140", tif=TimeInForce.GTD, expires_at=world.clock.now() + timedelta(seconds=20))
    world.venues.failures = [VenueUnavailable("venue timeout")]  # transient: the swap is retried after a backoff
    with pytest.raises(RetryLater):
        world.executor.execute(order.id)
    assert world.orders.get(order.id).valid_until <= order.limit.expires_at
    world.clock.current += timedelta(seconds=30)  # past its expiry and its signature's grace
    assert world.executor.execute(order.id) is Status.EXPIRED
    assert world.statuses(order.id)[-2:] == ["submitted", "expired"]
    assert world.venues.swap_calls == 1 and world.venues.ledger == {}
