"""A delivery's market orders advance together (issue 21): one statement per step for all of them, one read of the
pools per pair, one slot of swaps; each keeps its own conditional transitions, outcome and exactly-once swap."""

import pytest

from chalicelib.domain.orders import Status
from chalicelib.domain.venues import SwapRejected, VenueUnavailable
from chalicelib.services.execution import RetryLater
from tests.unit.test_services import FULL, World


class CountingVenues:
    """Counts the venues' calls the batch makes, passing each on."""

    def __init__(self, venues):
        self._venues = venues
        self.route_pool_reads = []

    def route_pools_for(self, pairs):
        self.route_pool_reads.append(list(pairs))
        return self._venues.route_pools_for(pairs)

    def __getattr__(self, name):
        return getattr(self._venues, name)


@pytest.fixture
def world():
    world = World()
    world.counting = CountingVenues(world.venues)
    world.executor._venues = world.counting  # the executor's own port, counted
    return world


def place_many(world, count, **body):
    orders = []
    for n in range(count):
        sell_sol = n % 2 == 0
        order_body = {"tokenIn": "SOL" if sell_sol else "USDC", "tokenOut": "USDC" if sell_sol else "SOL",
                      "amountIn": "1.5" if sell_sol else "200", "slippageBps": 100, **body}
        orders.append(world.place(user=f"trader-{n % 3}", body=order_body))
    return orders


def run_together(world, orders):
    batch = world.executor.prepare([order.id for order in orders])
    assert batch.alone == [] and batch.unknown == []
    return world.executor.execute_together(batch.together)


def test_a_delivery_of_market_orders_takes_each_step_once_for_all_of_them(world):
    orders = place_many(world, 6)
    for n, order in enumerate(orders):
        world.connections.add_connection(f"c{n}", order.user_id)
        world.notifier.subscribe(f"c{n}", order.id)
    outcomes = run_together(world, orders)
    assert outcomes == {order.id: Status.CONFIRMED for order in orders}
    assert world.orders.reads == 1  # one read of the delivery's orders
    assert world.orders.batched_transitions == 2  # routing to submitted (with the decisions), confirmed
    assert world.counting.route_pool_reads == [[("SOL", "USDC"), ("USDC", "SOL")]]  # one read, each pair once
    assert world.venues.slots_run == 1 and len(world.venues.ledger) == 6  # one slot, each its own swap
    for n, order in enumerate(orders):
        assert world.statuses(order.id) == FULL
        assert world.push.statuses(f"c{n}") == FULL  # each subscriber: every status once, in order
        assert world.orders.decision(order.id) is not None
        stored = world.orders.orders[order.id]
        assert world.venues.ledger[stored.tx_signature].memo == order.id
        assert stored.amount_out == world.venues.ledger[stored.tx_signature].amount_out


def test_the_swaps_of_a_slot_run_one_after_another_each_on_the_state_the_one_before_left(world):
    orders = place_many(world, 4, tokenIn="SOL", tokenOut="USDC", amountIn="100", routing="single", slippageBps=500)
    assert set(run_together(world, orders).values()) == {Status.CONFIRMED}
    receipts = [world.venues.ledger[world.orders.orders[o.id].tx_signature] for o in orders]
    assert len({r.pool_id for r in receipts}) == 1  # routed before the slot, all on the best pool
    outs = [r.amount_out for r in receipts]
    assert outs == sorted(outs, reverse=True) and outs[0] > outs[-1]  # each sold into the price the last left


def test_an_order_another_delivery_moved_on_is_left_to_it_and_the_others_go_on(world):
    orders = place_many(world, 3)
    batch = world.executor.prepare([order.id for order in orders])
    world.executor.execute(orders[1].id)  # a second delivery of one order runs meanwhile
    outcomes = world.executor.execute_together(batch.together)
    assert outcomes == {orders[0].id: Status.CONFIRMED, orders[1].id: None, orders[2].id: Status.CONFIRMED}
    assert world.statuses(orders[1].id) == FULL and world.venues.swap_calls == 3  # swapped once, by its owner


def test_a_refused_or_failed_swap_is_settled_alone_and_the_rest_of_the_slot_lands(world):
    orders = place_many(world, 3)
    world.venues.failures = [VenueUnavailable("transaction expired"), SwapRejected("the pool refused it")]
    outcomes = run_together(world, orders)
    assert isinstance(outcomes[orders[0].id], RetryLater)  # transient: the message comes back after the backoff
    assert outcomes[orders[1].id] is Status.FAILED and outcomes[orders[2].id] is Status.CONFIRMED
    assert world.statuses(orders[0].id) == ["pending", "routing", "building", "submitted", "submitted"]
    assert world.executor.execute(orders[0].id) is Status.CONFIRMED  # the redelivery sends it again
    assert "refused" in world.orders.orders[orders[1].id].failure_reason


def test_an_order_with_no_route_fails_alone(world):
    orders = place_many(world, 2)
    for pool_id in [p for p, pool in world.venues.by_id.items() if "USDC" in (pool.base, pool.quote)]:
        del world.venues.by_id[pool_id]  # every SOL/USDC pool is gone
    outcomes = run_together(world, orders)
    assert set(outcomes.values()) == {Status.FAILED}


@pytest.mark.parametrize("point", ["after_routing", "after_swap"])
def test_a_crash_mid_batch_leaves_every_order_to_its_redelivery_which_swaps_it_exactly_once(world, point):
    orders = place_many(world, 4)

    def crash(reached):
        if reached == point:
            raise SystemError(f"killed {reached}")

    world.executor._checkpoint = crash
    outcomes = run_together(world, orders)
    assert all(isinstance(outcome, SystemError) for outcome in outcomes.values())
    world.executor._checkpoint = lambda reached: None
    for order in orders:  # each message comes back alone
        assert world.executor.execute(order.id) is Status.CONFIRMED
        assert world.statuses(order.id) == FULL
    assert len(world.venues.ledger) == 4  # no order swapped twice
    assert [len(world.venues.swaps_for(order.id)) for order in orders] == [1, 1, 1, 1]


def test_orders_not_just_placed_or_not_market_orders_go_alone(world):
    market, other = place_many(world, 2)
    limit = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "type": "limit",
                              "limitPrice": "1000", "timeInForce": "GTC"})
    world.executor.execute(other.id)
    batch = world.executor.prepare([market.id, other.id, limit.id, market.id, "unknown"])
    assert [o.id for o in batch.together] == [market.id]
    assert [o.id for o in batch.alone] == [other.id, limit.id, market.id]
    assert batch.unknown == ["unknown"]


def test_each_order_of_a_batch_is_routed_on_the_pools_the_ones_before_it_leave(world):
    """The slot runs the batch's swaps in order, so each is quoted on the state the swaps before it leave: its quote
    is what it gets, even with a tolerance far below the price each swap moves."""
    orders = place_many(world, 4, tokenIn="SOL", tokenOut="USDC", amountIn="1000", slippageBps=1)
    orders += place_many(world, 2, tokenIn="USDC", tokenOut="SOL", amountIn="150000", slippageBps=1)
    assert set(run_together(world, orders).values()) == {Status.CONFIRMED}
    for order in orders:
        stored = world.orders.orders[order.id]
        routed = next(e for e in world.orders.events(order.id) if e.status is Status.BUILDING)
        assert routed.data["quotedOut"] == stored.token_out.format(stored.amount_out)  # quoted is what it got
    sold = [world.orders.orders[o.id].amount_out for o in orders[:4]]
    assert sold == sorted(sold, reverse=True) and sold[0] > sold[-1]  # each met the price the one before left
