"""Crash points, and what a redelivery does after each: resume, never swap twice, push what was not pushed."""

import json
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
import redis

from chalicelib.api.http import answers_problems
from chalicelib.api.websocket import WebsocketSessions
from chalicelib.domain.orders import Status, transaction_signature
from chalicelib.domain.venues import SwapRejected, VenueUnavailable
from chalicelib.faults import CrashPoints
from chalicelib.services import errors as refused
from chalicelib.services.execution import Executor, RetryLater
from chalicelib.services.notifications import Notifier
from chalicelib.services.sweeper import Sweeper
from chalicelib.worker import process_order_batch
from tests.unit.test_services import FULL, World
from tests.unit.test_worker import RecordingRedelivery, record


class Killed(BaseException):
    """Stands for the process dying: nothing after the crash point runs."""


def kill():
    raise Killed


@pytest.fixture
def world():
    return World()


def crashing_executor(world, point, every=1):
    return Executor(world.orders, world.venues, world.notifier, world.clock,
                    checkpoint=CrashPoints(point, every, kill=kill).reached)


def test_a_crash_point_kills_every_nth_time_it_is_reached_and_only_there():
    kills = []
    points = CrashPoints("after_swap", every=3, kill=lambda: kills.append(1))
    for _ in range(7):
        points.reached("after_routing")
        points.reached("after_swap")
    assert len(kills) == 2
    CrashPoints().reached("after_swap")  # unset: nothing happens


def test_an_unknown_crash_point_is_refused():
    with pytest.raises(ValueError, match="after_routing, after_swap, after_commit"):
        CrashPoints("before_lunch")


@pytest.mark.parametrize("point, left_in", [("after_routing", Status.ROUTING), ("after_swap", Status.SUBMITTED)])
def test_after_a_crash_the_redelivery_finishes_the_order_with_one_swap(world, point, left_in):
    order = world.place()
    with pytest.raises(Killed):
        crashing_executor(world, point).execute(order.id)
    assert world.orders.get(order.id).status is left_in
    assert world.executor.execute(order.id) is Status.CONFIRMED
    assert len(world.venues.ledger) == 1
    assert world.venues.swap_calls == 1  # after the swap, the redelivery asked the venue instead of swapping
    assert world.statuses(order.id) == FULL


def test_a_crash_after_commit_leaves_the_messages_undeleted_and_the_redelivery_changes_nothing(world):
    order = world.place()
    event = {"Records": [{**record(0), "body": json.dumps({"orderId": order.id})}]}
    with pytest.raises(Killed):
        process_order_batch(event, None, world.executor, RecordingRedelivery(),
                            checkpoint=CrashPoints("after_commit", kill=kill).reached)
    assert world.orders.get(order.id).status is Status.CONFIRMED
    assert process_order_batch(event, None, world.executor, RecordingRedelivery()) == {"batchItemFailures": []}
    assert world.statuses(order.id) == FULL and len(world.venues.ledger) == 1


class FlakyPush:
    """Fails once, as @connections or Redis would during a restart, after the events are stored."""

    def __init__(self, push, fail_at_seq):
        self.push = push
        self.fail_at_seq = fail_at_seq

    def send(self, connection_id, payload):
        if payload.get("seq") == self.fail_at_seq:
            self.fail_at_seq = None
            raise redis.ConnectionError("connection reset")
        return self.push.send(connection_id, payload)


def test_events_stored_but_not_pushed_reach_the_subscriber_on_the_next_delivery(world):
    order = world.place()
    notifier = Notifier(world.orders, world.connections, FlakyPush(world.push, fail_at_seq=3))
    notifier.subscribe("c1", order.id)
    executor = Executor(world.orders, world.venues, notifier, world.clock)
    with pytest.raises(redis.ConnectionError):
        executor.execute(order.id)  # "building" is stored; its push failed
    assert world.push.statuses("c1") == ["pending", "routing"]
    assert executor.execute(order.id) is Status.CONFIRMED
    assert [f["seq"] for f in world.push.frames["c1"]] == [1, 2, 3, 4, 5]
    assert world.push.statuses("c1") == FULL


def test_a_stuck_submitted_order_is_not_failed_while_its_swap_could_still_land(world):
    order = world.place()
    world.venues.failures = [VenueUnavailable("timeout")]
    with pytest.raises(RetryLater):
        world.executor.execute(order.id)
    submitted = world.orders.get(order.id)
    assert submitted.status is Status.SUBMITTED
    sweeper = Sweeper(world.orders, world.queue, world.executor, world.clock, timedelta(seconds=1), max_sweeps=0)
    world.clock.current += timedelta(seconds=10)
    assert sweeper.sweep().ended == 0  # a delivery may be swapping right now
    assert world.orders.get(order.id).status is Status.SUBMITTED
    world.clock.current += timedelta(minutes=2)
    assert sweeper.sweep().ended == 1
    assert world.orders.get(order.id).status is Status.FAILED
    with pytest.raises(SwapRejected, match="expired"):  # and the venue refuses that signature from now on
        world.venues.swap(submitted.tx_signature, order.id, submitted.pool_id, "SOL", "USDC", order.amount_in, 0,
                          submitted.valid_until)
    assert world.venues.ledger == {}


def test_a_websocket_request_during_an_outage_gets_a_503_frame_naming_it(world):
    class DownConnections:
        def user_of(self, connection_id):
            raise redis.ConnectionError("Connection refused")

    sessions = WebsocketSessions(DownConnections(), world.notifier, world.service, world.push, lambda t: "alice",
                                 dependency_down=(redis.ConnectionError,))
    sessions.receive("c1", json.dumps({"action": "subscribe", "orderId": "o-1"}))
    frame = world.push.frames["c1"][-1]
    assert (frame["type"], frame["action"], frame["orderId"], frame["error"]["status"]) == (
        "error", "subscribe", "o-1", 503)
    assert "Connection refused" not in json.dumps(frame)


def test_a_route_answers_503_with_retry_after_when_the_database_is_away():
    @answers_problems
    def view():
        raise psycopg.OperationalError("connection to server at 10.0.0.7 failed: password authentication failed")

    response = view()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "10.0.0.7" not in response.body and "password" not in response.body


class QueueDownOnce:
    def __init__(self):
        self.sent = []
        self.down = True

    def enqueue(self, order_id):
        if self.down:
            self.down = False
            raise ConnectionError("emulator restarting")
        self.sent.append(order_id)


def test_a_keyed_order_that_could_not_be_queued_stays_pending_and_its_retry_queues_it(world):
    from chalicelib.api.requests import parse_order
    from chalicelib.services.orders import OrderService

    queue = QueueDownOnce()
    service = OrderService(world.orders, queue, world.clock)
    body = b'{"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5"}'
    with pytest.raises(refused.Unavailable, match="same Idempotency-Key"):
        service.place("alice", parse_order(body).to_command(),
                      order_id="a7c3f0de-0000-4000-8000-000000000001")
    assert world.orders.get("a7c3f0de-0000-4000-8000-000000000001").status is Status.PENDING
    again = service.place("alice", parse_order(body.replace(b"1.5", b"1.50")).to_command(),
                          order_id="a7c3f0de-0000-4000-8000-000000000001")
    assert again.id == "a7c3f0de-0000-4000-8000-000000000001" and queue.sent == [again.id]
    assert len(world.orders.orders) == 1
    with pytest.raises(refused.Invalid):
        service.place("alice", parse_order(body.replace(b"1.5", b"2")).to_command(),
                      order_id="a7c3f0de-0000-4000-8000-000000000001")


def test_an_order_built_by_a_delivery_that_died_is_signed_again_when_its_signature_expired(world):
    order = world.place()
    built_at = world.clock.now()
    world.orders.transition(order.id, Status.PENDING, Status.ROUTING, built_at, {})
    old = transaction_signature(order.id)
    world.orders.transition(order.id, Status.ROUTING, Status.BUILDING, built_at, {}, venue="raydium",
                            pool_id="raydium-sol-usdc", min_out=1, tx_signature=old,
                            valid_until=built_at + timedelta(seconds=60))
    world.clock.current += timedelta(minutes=6)  # its message came back after the visibility timeout
    assert world.executor.execute(order.id) is Status.CONFIRMED
    confirmed = world.orders.get(order.id)
    assert confirmed.tx_signature != old and list(world.venues.ledger) == [confirmed.tx_signature]
    assert confirmed.attempts == 1


def test_a_swap_sent_by_a_delivery_that_died_is_signed_again_once_it_cannot_land(world):
    order = world.place()
    world.venues.failures = [VenueUnavailable("dropped")]  # the dead delivery's swap never landed
    with pytest.raises(RetryLater):
        world.executor.execute(order.id)
    first = world.orders.get(order.id)
    world.clock.current = first.valid_until + timedelta(seconds=1)
    with pytest.raises(RetryLater):  # within the grace: it might still be committing somewhere
        world.executor.execute(order.id)
    world.clock.current = first.valid_until + timedelta(minutes=1)
    assert world.executor.execute(order.id) is Status.CONFIRMED
    confirmed = world.orders.get(order.id)
    assert confirmed.tx_signature != first.tx_signature and list(world.venues.ledger) == [confirmed.tx_signature]
    resigned = [e.data for e in world.orders.events(order.id) if e.data.get("previousError", "").startswith("the sig")]
    assert [d["attempt"] for d in resigned] == [3]


def test_the_sweeper_pushes_a_final_status_whose_invocation_died_before_pushing_it(world):
    order = world.place()
    world.notifier.subscribe("c1", order.id)
    silent = Executor(world.orders, world.venues, Notifier(world.orders, Unpublished(world.connections), world.push),
                      world.clock)
    assert silent.execute(order.id) is Status.CONFIRMED  # stored, but never pushed (and its message was gone)
    assert world.push.statuses("c1") == ["pending"]
    sweeper = Sweeper(world.orders, world.queue, world.executor, world.clock, timedelta(minutes=2),
                      notifier=world.notifier)
    assert sweeper.sweep().caught_up == 1
    assert world.push.statuses("c1") == FULL
    assert sweeper.sweep().caught_up == 0  # nothing left behind


class Unpublished:
    """Connections as a process that dies right after each commit sees them: it never gets to push."""

    def __init__(self, connections):
        self.connections = connections

    def subscribers(self, order_id):
        return self.connections.subscribers(order_id)

    @contextmanager
    def delivery(self, order_id, joining=None, if_subscribed=False):
        assert if_subscribed  # only the executor's publish comes here
        yield None
