import dataclasses
import json
from datetime import timedelta

import pytest

from chalicelib.api.problems import ProblemError
from chalicelib.api.requests import parse_order
from chalicelib.api.websocket import WebsocketSessions
from chalicelib.auth import Principal
from chalicelib.bootstrap import build_engine
from chalicelib.domain.limits import TokenBucket
from chalicelib.domain.markets import LISTED_PAIRS, genesis_pools
from chalicelib.domain.orders import Status
from chalicelib.domain.tokens import TOKENS
from chalicelib.domain.venues import SlippageExceeded, VenueUnavailable
from chalicelib.services import errors as refused
from chalicelib.services.execution import RetryLater
from chalicelib.services.orders import OrderService
from chalicelib.settings import Settings
from tests.fakes import (
    FakeClock,
    FakeConnections,
    FakeOrders,
    FakePairLocks,
    FakePlacement,
    FakePoolEvents,
    FakePush,
    FakeQueue,
    FakeRateLimiter,
    FakeStatistics,
    FakeVenues,
)

FULL = ["pending", "routing", "building", "submitted", "confirmed"]


def rendered(result):
    """A use case's answer as the API renders it (``api/views.py``), to assert on what clients read."""
    from chalicelib.api import views
    from chalicelib.services.read_models import MarketQuote, OrderDetails, OrderPage

    view = {OrderDetails: views.Order.of_details, OrderPage: views.OrderPage.of,
            MarketQuote: views.Quote.of}[type(result)](result)
    return view.model_dump(mode="json")


class World:
    """The engine as the handlers get it (``build_engine``), on fakes of every adapter."""

    def __init__(self, swap_latency_ms: str = "0"):
        TOKENS.forget_learnt()  # the registries are the process's: each world starts from the genesis listings
        LISTED_PAIRS.forget_learnt()
        self.clock = FakeClock()
        self.orders = FakeOrders()
        self.queue = FakeQueue()
        self.pool_events = FakePoolEvents()
        self.venues = FakeVenues(genesis_pools(), self.clock, self.pool_events)
        self.connections = FakeConnections()
        self.push = FakePush()
        self.engine = build_engine(
            # The fake venues land a swap the moment it is sent, unless a test says otherwise.
            Settings.from_env({"DEX_SWAP_LATENCY_MS": swap_latency_ms}), clock=self.clock, orders=self.orders,
            venues=self.venues,
            statistics=FakeStatistics(self.orders), locks=FakePairLocks(), queue=self.queue, dead_letters=FakeQueue(),
            pool_events=self.pool_events,
            connections=self.connections, push=self.push, rate_limiter=FakeRateLimiter(TokenBucket(1e6, 10**6),
                                                                                        self.clock),
            placement=FakePlacement)
        self.notifier = self.engine.notifier
        self.service = self.engine.orders
        self.executor = self.engine.executor
        self.triggers = self.engine.triggers

    def place(self, user="alice", body=None):
        body = body or {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}
        return self.service.place(user, parse_order(json.dumps(body).encode()).to_command())

    def statuses(self, order_id):
        return [str(e.status) for e in self.orders.events(order_id)]


@pytest.fixture
def world():
    return World()


def test_placing_an_order_stores_it_pending_and_enqueues_it(world):
    order = world.place()
    assert order.status is Status.PENDING and order.amount_in == 1_500_000_000
    assert world.queue.sent == [order.id]
    assert world.statuses(order.id) == ["pending"]


def test_an_order_that_cannot_be_queued_is_refused_and_closed(world):
    class BrokenQueue:
        def enqueue(self, order_id):
            raise ConnectionError("queue unreachable")

    service = OrderService(world.orders, BrokenQueue(), world.clock)
    with pytest.raises(refused.Unavailable):
        body = b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}'
        service.place("alice", parse_order(body).to_command())
    (order,) = world.orders.orders.values()
    assert order.status is Status.FAILED and "could not be queued" in order.failure_reason


def test_an_order_runs_through_every_status_to_confirmed(world):
    order = world.place()
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.statuses(order.id) == FULL
    view = rendered(world.service.view("alice", order.id))
    assert view["execution"]["txSignature"] in world.venues.ledger
    assert view["execution"]["venue"] == view["routing"]["venue"]
    assert len(view["routing"]["quotes"]) == 2
    assert [e["seq"] for e in view["events"]] == [1, 2, 3, 4, 5]


def test_a_second_delivery_of_a_finished_order_changes_nothing(world):
    order = world.place()
    world.executor.execute(order.id)
    world.executor.execute(order.id)
    assert world.statuses(order.id) == FULL
    assert world.venues.swap_calls == 1


def test_a_redelivery_after_a_crash_while_submitted_asks_the_venue_and_does_not_swap_again(world):
    order = world.place()
    world.executor.execute(order.id)
    stored = world.orders.orders[order.id]
    # rewind the stored status as if the worker died after the swap but before recording it
    world.orders.orders[order.id] = type(stored)(**{**stored.__dict__, "status": Status.SUBMITTED})
    world.orders.event_log[order.id].pop()
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert world.venues.swap_calls == 1
    assert len(world.venues.ledger) == 1


def test_slippage_beyond_the_tolerance_fails_the_order_with_the_reason(world):
    order = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "100", "slippageBps": 1})
    world.venues.move_price_before_swap = 5_000 * 10**9  # a big trade lands first and moves the price
    assert world.executor.execute(order.id) is Status.FAILED
    assert world.statuses(order.id) == ["pending", "routing", "building", "submitted", "failed"]
    assert "below" in world.orders.orders[order.id].failure_reason
    assert world.venues.ledger == {}


def test_a_transient_venue_failure_is_retried_through_the_queue_with_backoff(world):
    order = world.place()
    world.venues.failures = [VenueUnavailable("transaction expired"), VenueUnavailable("transaction expired")]
    with pytest.raises(RetryLater) as first:
        world.executor.execute(order.id)
    with pytest.raises(RetryLater) as second:
        world.executor.execute(order.id)  # the redelivery, after the backoff
    assert (first.value.delay_seconds, second.value.delay_seconds) == (2, 4)
    assert world.executor.execute(order.id) is Status.CONFIRMED
    events = world.orders.events(order.id)
    assert [str(e.status) for e in events] == ["pending", "routing", "building", "submitted", "submitted",
                                                "submitted", "confirmed"]
    assert [e.data.get("attempt") for e in events if e.status is Status.SUBMITTED] == [1, 2, 3]
    assert events[4].data["previousError"] == "transaction expired"
    assert len(world.venues.ledger) == 1


def test_after_the_last_attempt_the_order_fails_with_the_reason_once_its_signature_expired(world):
    order = world.place()
    world.venues.failures = [VenueUnavailable("transaction dropped")] * 3
    for _ in range(2):
        with pytest.raises(RetryLater):
            world.executor.execute(order.id)
    with pytest.raises(RetryLater) as waiting:
        world.executor.execute(order.id)  # a copy another delivery sent could still land: not failed yet
    assert 60 <= waiting.value.delay_seconds <= 66
    awaiting = world.orders.events(order.id)[-1]
    assert (awaiting.status, awaiting.data["attempt"], awaiting.data["error"]) == (
        Status.SUBMITTED, 3, "transaction dropped")
    with pytest.raises(RetryLater):
        world.executor.execute(order.id)  # redelivered early: still waiting, and no fourth submission
    world.clock.current += timedelta(seconds=waiting.value.delay_seconds)
    assert world.executor.execute(order.id) is Status.FAILED
    last = world.orders.events(order.id)[-1]
    assert last.data == {"reason": "transaction dropped (after 3 attempts)", "attempts": 3}
    assert world.venues.ledger == {} and world.venues.swap_calls == 3


def test_when_every_attempt_failed_but_another_deliverys_copy_landed_the_order_is_confirmed(world):
    order = world.place()
    world.venues.failures = [VenueUnavailable("transaction dropped")] * 3
    for _ in range(3):
        with pytest.raises(RetryLater):
            world.executor.execute(order.id)
    submitted = world.orders.get(order.id)
    # the duplicate delivery's swap, under the same signature, lands after this delivery's last failure
    world.venues.swap(submitted.tx_signature, order.id, submitted.pool_id, "SOL", "USDC", order.amount_in,
                      submitted.min_out, submitted.valid_until)
    world.clock.current += timedelta(minutes=2)
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert len(world.venues.ledger) == 1


def test_a_signature_that_failed_for_good_never_executes_afterwards(world):
    order = world.place(body={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "100", "slippageBps": 1})
    world.venues.move_price_before_swap = 5_000 * 10**9  # someone trades first: the swap slips
    assert world.executor.execute(order.id) is Status.FAILED
    failed = world.orders.get(order.id)
    world.venues.move_price_before_swap = 0
    with pytest.raises(SlippageExceeded):  # a copy sent again, even when the price came back, fails the same way
        world.venues.swap(failed.tx_signature, order.id, failed.pool_id, "SOL", "USDC", order.amount_in,
                          failed.min_out, failed.valid_until)
    assert world.venues.ledger == {}


def test_a_stale_delivery_cannot_record_a_change_over_a_newer_one(world):
    order = world.place()
    world.executor.execute(order.id)
    stale = world.orders.orders[order.id]
    assert world.orders.transition(order.id, Status.CONFIRMED, Status.CONFIRMED, world.clock.now(), {},
                                   expected_seq=stale.seq - 1) is None


def test_a_user_cannot_see_another_users_order(world):
    order = world.place(user="alice")
    with pytest.raises(refused.NotFound):
        world.service.view("bob", order.id)
    with pytest.raises(refused.NotFound):
        world.service.view("alice", "not-a-uuid")


def test_a_subscriber_gets_the_history_then_live_events_once_and_in_order(world):
    order = world.place()
    world.connections.add_connection("c1", "alice")
    world.notifier.subscribe("c1", order.id)
    world.executor.execute(order.id)
    assert world.push.statuses("c1") == FULL
    assert [f["seq"] for f in world.push.frames["c1"]] == [1, 2, 3, 4, 5]


def test_a_late_subscriber_misses_nothing(world):
    order = world.place()
    world.executor.execute(order.id)
    world.connections.add_connection("late", "alice")
    world.notifier.subscribe("late", order.id)
    assert world.push.statuses("late") == FULL


def test_a_gone_connection_is_dropped_and_others_still_receive(world):
    order = world.place()
    for c in ("gone", "live"):
        world.connections.add_connection(c, "alice")
        world.notifier.subscribe(c, order.id)
    world.push.gone.add("gone")
    world.executor.execute(order.id)
    assert world.push.statuses("live") == FULL
    assert "gone" not in world.connections.users
    assert "gone" not in world.connections.subscribers(order.id)


def test_a_subscriber_behind_by_several_events_is_caught_up_from_the_store(world):
    order = world.place()
    world.connections.add_connection("c1", "alice")
    with world.connections.delivery(order.id, joining="c1"):
        pass  # registered, but nothing delivered yet
    world.executor.execute(order.id)
    assert world.push.statuses("c1") == FULL


def test_websocket_actions(world):
    sessions = WebsocketSessions(world.connections, world.notifier, world.service, world.push,
                                 verify_token=lambda token: Principal("alice") if token == "good" else _refuse())
    with pytest.raises(ProblemError):
        sessions.connect("c0", "bad")
    sessions.connect("c1", "good")
    order = world.place()
    sessions.receive("c1", json.dumps({"action": "subscribe", "orderId": order.id}))
    assert world.push.statuses("c1") == ["pending"]
    sessions.receive("c1", "not json")
    sessions.receive("c1", json.dumps({"action": "dance"}))
    sessions.receive("c1", json.dumps({"action": "subscribe", "orderId": "00000000-0000-0000-0000-000000000000"}))
    errors = [f for f in world.push.frames["c1"] if f["type"] == "error"]
    assert [e["error"]["status"] for e in errors] == [400, 400, 404]
    assert errors[1]["action"] == "dance" and "submit" in errors[1]["error"]["detail"]
    sessions.receive("c1", json.dumps({"action": "ping"}))
    assert world.push.frames["c1"][-1] == {"type": "pong"}
    sessions.disconnect("c1")
    assert world.connections.subscribers(order.id) == {}


@pytest.mark.parametrize("order_id", ["bob's", "00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_subscribing_to_an_order_not_ones_own_is_404_and_leaves_no_subscription(world, order_id):
    sessions = WebsocketSessions(world.connections, world.notifier, world.service, world.push,
                                 verify_token=lambda token: Principal("alice"))
    sessions.connect("c1", "alice's token")
    bobs = world.place(user="bob")
    asked = bobs.id if order_id == "bob's" else order_id
    sessions.receive("c1", json.dumps({"action": "subscribe", "orderId": asked}))
    assert [f["error"]["status"] for f in world.push.frames["c1"]] == [404]
    assert world.connections.subscribers(asked) == {}
    world.executor.execute(bobs.id)  # every update of bob's order goes by; none reaches alice's connection
    assert world.push.statuses("c1") == []


def _refuse():
    from chalicelib.api.problems import Unauthorized

    raise Unauthorized("no")


def test_clock_is_injected(world):
    start = world.clock.now()
    order = world.place()
    assert order.created_at - start < timedelta(seconds=1)


def sweeper(world, **options):
    from chalicelib.services.sweeper import Sweeper

    return Sweeper(world.orders, world.queue, world.executor, world.clock, **options)


def test_the_sweeper_requeues_an_order_whose_message_was_lost_and_leaves_fresh_ones_alone(world):
    lost = world.place()
    world.clock.current += timedelta(minutes=5)
    fresh = world.place()
    report = sweeper(world, stuck_after=timedelta(minutes=2)).sweep()
    assert (report.requeued, report.ended) == (1, 0)
    assert world.queue.sent == [lost.id, fresh.id, lost.id]
    assert world.orders.orders[lost.id].sweeps == 1
    assert world.executor.execute(lost.id) is Status.CONFIRMED


def test_the_sweeper_ends_an_order_that_stays_stuck(world):
    order = world.place()
    sweep = sweeper(world, stuck_after=timedelta(minutes=2), max_sweeps=2)
    for _ in range(2):
        world.clock.current += timedelta(minutes=3)
        assert sweep.sweep().requeued == 1
    world.clock.current += timedelta(minutes=3)
    assert sweep.sweep().ended == 1
    assert world.orders.orders[order.id].status is Status.FAILED
    assert "no progress after 2 redeliveries" in world.orders.orders[order.id].failure_reason


def test_a_stuck_submitted_order_whose_swap_landed_is_confirmed_not_failed(world):
    order = world.place()
    world.executor.execute(order.id)
    done = world.orders.orders[order.id]
    # as if the worker died after the swap but before recording it
    world.orders.orders[order.id] = dataclasses.replace(done, status=Status.SUBMITTED, seq=done.seq - 1)
    world.orders.event_log[order.id].pop()
    world.clock.current += timedelta(minutes=3)
    assert sweeper(world, stuck_after=timedelta(minutes=2), max_sweeps=0).sweep().ended == 1
    assert world.orders.orders[order.id].status is Status.CONFIRMED
    assert world.venues.swap_calls == 1
