"""The trigger: pool events wake the resting orders the new price can fill, read through the price index, in
price-then-time priority, never two on liquidity only one can take, and never one a cancel got to first."""

from datetime import timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.commands import TradeOnPool
from chalicelib.domain.limit_orders import TimeInForce
from chalicelib.domain.orders import Status
from chalicelib.services import errors as refused
from chalicelib.services.execution import RetryLater
from tests.unit.test_limit_execution import FILLED, place, push_sol_price_up
from tests.unit.test_services import World

SOL_USDC = ("SOL", "USDC")


@pytest.fixture
def world():
    return World()


def rest(world, **terms):
    order = place(world, **terms)
    assert world.executor.execute(order.id) is Status.OPEN
    world.queue.sent.clear()
    return order


def test_a_pool_event_triggers_the_order_its_price_fills_and_queues_it_for_the_worker(world):
    order = rest(world, price="152")
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == []  # the price has not moved yet
    push_sol_price_up(world)
    report = world.triggers.on_pools_changed([SOL_USDC])
    assert report.triggered == [order.id] and world.queue.sent == [order.id]
    triggered = world.orders.events(order.id)[-1]
    assert triggered.status is Status.TRIGGERED and triggered.data["cause"] == "pool"
    assert triggered.data["requiredOut"] == "1520" and float(triggered.data["quotedOut"]) >= 1520
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.statuses(order.id) == FILLED


def test_only_orders_the_best_price_could_fill_are_read(world):
    far = [rest(world, price=str(200 + n)) for n in range(30)]  # sellers far above the market
    near = rest(world, price="152")
    push_sol_price_up(world, usdc=150_000)  # the best bid rises to about 155.7
    report = world.triggers.on_pools_changed([SOL_USDC])
    assert report.triggered == [near.id] and report.checked == 1  # the 30 far ones were never read
    assert all(world.orders.get(o.id).status is Status.OPEN for o in far)


def test_two_orders_never_trigger_on_liquidity_only_one_can_take(world):
    # Each alone could fill now; after the first's 3,000 SOL the price is too low for the second.
    first = rest(world, amount="3000", price="151")
    second = rest(world, amount="3000", price="151")
    push_sol_price_up(world, usdc=300_000)  # 3,000 SOL now average 152.3; the next 3,000 only 150.0
    report = world.triggers.on_pools_changed([SOL_USDC])
    assert report.triggered == [first.id]  # time priority at the same price
    assert world.orders.get(second.id).status is Status.OPEN
    again = world.triggers.on_pools_changed([SOL_USDC])  # the first has not swapped yet: its liquidity is taken
    assert again.triggered == []


def test_the_better_price_goes_first(world):
    dear = rest(world, amount="3000", price="151.5")
    cheap = rest(world, amount="3000", price="151")  # placed later, but asks less
    push_sol_price_up(world, usdc=300_000)
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == [cheap.id]
    assert world.orders.get(dear.id).status is Status.OPEN


def test_a_cancel_that_lands_first_wins_and_the_order_is_not_queued(world):
    order = rest(world, price="152")
    push_sol_price_up(world)
    read = world.orders.resting

    def resting_then_cancelled(*args):
        found = read(*args)
        world.service.cancel("alice", order.id)  # the trader cancels right after the trigger read the order
        return found

    world.orders.resting = resting_then_cancelled
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == []
    assert world.orders.get(order.id).status is Status.CANCELLED and world.queue.sent == []


def test_many_events_of_one_pair_are_one_evaluation_and_a_repeat_triggers_nothing_twice(world):
    order = rest(world, price="152")
    push_sol_price_up(world)
    report = world.triggers.on_pools_changed([SOL_USDC] * 3)
    assert report.pairs == 1 and report.triggered == [order.id]
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == []  # delivered again: it is triggered already
    assert world.queue.sent == [order.id]
    assert world.statuses(order.id).count("triggered") == 1


def test_buyers_trigger_when_the_price_falls(world):
    buyer = rest(world, amount="1480", price="148", token_in="USDC", token_out="SOL")
    seller = rest(world, price="160")
    for pool_id in ("raydium-sol-usdc", "meteora-sol-usdc"):
        world.venues.swap(f"other-{pool_id}", "another trader", pool_id, "SOL", "USDC", 12_000 * 10**9, 0)
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == [buyer.id]
    assert world.orders.get(seller.id).status is Status.OPEN


def test_an_expired_order_is_not_triggered_by_a_late_event_and_the_worker_expires_it(world):
    order = place(world, price="152", tif=TimeInForce.GTD, expires_at=world.clock.now() + timedelta(seconds=5))
    with pytest.raises(RetryLater):  # resting, its message kept for its expiry
        world.executor.execute(order.id)
    world.clock.current += timedelta(seconds=6)
    push_sol_price_up(world)
    world.triggers.on_pools_changed([SOL_USDC])
    assert world.executor.execute(order.id) is Status.EXPIRED  # triggered or not, no swap after its time
    assert not any(r.memo == order.id for r in world.venues.ledger.values())


def test_an_event_of_a_pair_with_nothing_resting_reads_no_pool_state(world):
    read = []
    pools = world.venues.pools
    world.venues.pools = lambda *args: read.append(args) or pools(*args)
    assert world.triggers.on_pools_changed([SOL_USDC]).checked == 0 and read == []
    rest(world, price="160")
    read.clear()  # placing read them too (a limit beyond every pool's reserves is refused)
    world.triggers.on_pools_changed([SOL_USDC])
    assert read == [SOL_USDC]


def test_another_traders_direct_swap_moves_the_price_and_wakes_a_resting_order(world):
    order = rest(world, price="152")
    receipt = world.engine.market.trade("bob", TradeOnPool("raydium-sol-usdc", "USDC", Decimal("1000000")))
    assert receipt.memo == "wallet:bob" and receipt.token_out == "SOL" and receipt.amount_out > 0
    assert world.triggers.on_pools_changed([SOL_USDC]).triggered == [order.id]


@pytest.mark.parametrize("trade, field", [
    (TradeOnPool("raydium-btc-usdc", "USDC", Decimal("1")), "poolId"),
    (TradeOnPool("raydium-sol-usdc", "JUP", Decimal("1")), "tokenIn"),
    (TradeOnPool("raydium-sol-usdc", "SOL", Decimal("1"), Decimal("150.0000001")), "minAmountOut"),
])
def test_a_direct_swap_the_venues_cannot_take_is_refused_naming_the_field(world, trade, field):
    with pytest.raises(refused.Invalid) as caught:
        world.engine.market.trade("bob", trade)
    assert caught.value.fields[0]["field"] == field and world.venues.ledger == {}


def test_a_direct_swap_below_its_least_output_is_a_conflict_and_moves_nothing(world):
    with pytest.raises(refused.Conflict):
        world.engine.market.trade("bob", TradeOnPool("raydium-sol-usdc", "SOL", Decimal("1"), Decimal("1000")))
    assert world.venues.ledger == {}
