"""Orders on the router (issue 19): a split over pools and a hop through a third token execute as one transaction
of several legs, all or nothing, and ``"routing": "single"`` keeps one pool."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.api import views
from chalicelib.domain.orders import Status
from chalicelib.domain.routing import choose_route
from chalicelib.domain.venues import SwapRejected
from tests.fakes import pool_quotes
from tests.unit.test_services import World


@pytest.fixture
def world():
    return World()


def best_single_out(world, token_in, token_out, amount):
    return choose_route(pool_quotes(world.venues, token_in, token_out, amount, now(world))).chosen.amount_out


def now(world) -> int:
    return int(world.clock.current.timestamp())


def test_a_large_sell_splits_over_both_pools_in_one_transaction_for_more_than_either_pool(world):
    single = best_single_out(world, "SOL", "USDC", 5_000 * 10**9)
    order = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "5000", "slippageBps": 100})
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    ((route_a, route_b),) = world.venues.routes_sent  # one transaction, two routes of one hop each
    assert {route_a.hops[0][0], route_b.hops[0][0]} == {"raydium-sol-usdc", "meteora-sol-usdc"}
    assert route_a.amount_in + route_b.amount_in == 5_000 * 10**9
    assert len(done.legs) == 2 and sum(leg.amount_out for leg in done.legs) == done.amount_out > single
    assert done.venue == "+".join(leg.venue for leg in done.legs)
    (receipt,) = world.venues.swaps_for(order.id)  # one ledger entry with its two legs
    assert receipt.legs == done.legs and receipt.pool_id == done.legs[0].pool_id
    body = views.Order.of_details(world.service.view("alice", order.id)).model_dump(mode="json")
    plan = body["routing"]["routePlan"]
    assert sum(Decimal(leg["percent"]) for leg in plan) == 100 and Decimal(body["routing"]["gainBps"]) >= 1
    assert [leg["amountOut"] for leg in body["execution"]["legs"]] == [
        done.token_out.format(leg.amount_out) for leg in done.legs]
    assert "split" in body["routing"]["reason"]


def test_a_pair_no_pool_trades_goes_through_the_token_both_pair_with(world):
    order = world.place(body={"tokenIn": "JUP", "tokenOut": "SOL", "amountIn": "1000", "slippageBps": 100})
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    first, second = done.legs
    assert (first.token_in, first.token_out, second.token_in, second.token_out) == ("JUP", "USDC", "USDC", "SOL")
    assert second.amount_in == first.amount_out and second.amount_out == done.amount_out
    decision = world.orders.decision(order.id)
    assert decision.gain_bps is None and "no single pool trades the pair" in decision.reason


def test_usdc_to_usdt_hops_through_sol(world):
    order = world.place(body={"tokenIn": "USDC", "tokenOut": "USDT", "amountIn": "1500", "slippageBps": 100})
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert [leg.token_out for leg in world.orders.get(order.id).legs] == ["SOL", "USDT"]


def test_routing_single_keeps_one_pool_however_large_the_order(world):
    single = best_single_out(world, "SOL", "USDC", 5_000 * 10**9)
    order = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "5000", "slippageBps": 100,
                              "routing": "single"})
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    assert len(done.legs) == 1 and done.amount_out == single and done.route is None
    assert str(done.routing) == "single"


def test_a_small_order_keeps_one_leg_as_a_split_gains_less_than_the_minimum(world):
    order = world.place()  # 1.5 SOL
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert len(world.orders.get(order.id).legs) == 1 and world.orders.decision(order.id).gain_bps == 0


def test_a_refused_route_changes_no_pool_and_fails_the_order(world):
    before = dict(world.venues.by_id)
    order = world.place(body={"tokenIn": "JUP", "tokenOut": "SOL", "amountIn": "1000", "slippageBps": 100})
    world.venues.failures.append(SwapRejected("the second leg's pool refused it"))
    assert world.executor.execute(order.id) is Status.FAILED
    assert world.venues.by_id == before and world.venues.swaps_for(order.id) == []


def test_a_retried_route_executes_once_under_its_one_signature(world):
    from chalicelib.domain.venues import VenueUnavailable
    from chalicelib.services.execution import RetryLater

    order = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "5000", "slippageBps": 100})
    world.venues.failures.append(VenueUnavailable("dropped"))
    with pytest.raises(RetryLater):
        world.executor.execute(order.id)
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.executor.execute(order.id) is Status.CONFIRMED  # a duplicate delivery changes nothing
    (receipt,) = world.venues.swaps_for(order.id)
    assert len(receipt.legs) == 2 and len({r for sent in world.venues.routes_sent for r in sent}) == 2


def test_a_limit_order_too_large_for_either_pool_triggers_on_a_split_and_fills_at_its_limit(world):
    amount = 5_000 * 10**9
    single = best_single_out(world, "SOL", "USDC", amount)
    least = single + single // 2_000  # 5 bp more than the best single pool pays: only a split reaches it
    order = world.service.place("alice", _limit(amount, least))
    assert world.executor.execute(order.id) is Status.CONFIRMED
    done = world.orders.get(order.id)
    assert done.amount_out >= least and len(done.legs) == 2


def test_the_trigger_wakes_a_limit_order_a_split_fills(world):
    amount = 5_000 * 10**9
    single = best_single_out(world, "SOL", "USDC", amount)
    least = single + single // 2_000
    # Resting first: the price is worse until someone buys SOL back.
    world.venues.swap("other-1", "x", "raydium-sol-usdc", "SOL", "USDC", 2_000 * 10**9, 0)
    order = world.service.place("alice", _limit(amount, least))
    assert world.executor.execute(order.id) is Status.OPEN
    world.venues.swap("other-2", "x", "raydium-sol-usdc", "USDC", "SOL", 400_000 * 10**6, 0)
    report = world.triggers.on_pools_changed([("SOL", "USDC")])
    assert report.triggered == [order.id]
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.orders.get(order.id).amount_out >= least


def _limit(amount: int, least: int):
    from chalicelib.domain.commands import Limit, PlaceOrder
    from chalicelib.domain.limit_orders import TimeInForce
    from chalicelib.domain.orders import OrderType

    return PlaceOrder("SOL", "USDC", Decimal(amount) / 10**9, None, OrderType.LIMIT,
                      Limit(TimeInForce.GTC, None, Decimal(least) / 10**6))


def test_split_min_gain_bps_sets_what_a_split_must_gain_and_bad_values_are_refused():
    from chalicelib.domain.markets import genesis_pools
    from chalicelib.domain.routing import decide_route
    from chalicelib.settings import Settings

    assert Settings.from_env({}).split_min_gain_bps == 1
    assert Settings.from_env({"SPLIT_MIN_GAIN_BPS": "12.5"}).split_min_gain_bps == Decimal("12.5")
    for bad in ("-1", "NaN", "many"):
        with pytest.raises(ValueError, match="SPLIT_MIN_GAIN_BPS must be a number of basis points"):
            Settings.from_env({"SPLIT_MIN_GAIN_BPS": bad})
    pools, amount = genesis_pools(), 5_000 * 10**9  # a split gains 9.87 bp
    assert not decide_route(pools, "SOL", "USDC", amount, 0, Decimal(9)).is_single
    assert decide_route(pools, "SOL", "USDC", amount, 0, Decimal(10)).is_single
    assert not decide_route(pools, "SOL", "USDC", 1_000 * 10**9, 0, Decimal(0)).is_single  # 1.53 bp
    hop = decide_route(pools, "JUP", "SOL", 10**9, 0, Decimal(10_000))  # no single pool: a hop whatever the bar
    assert len(hop.route_legs) == 2
