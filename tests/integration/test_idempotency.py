"""Idempotency-Key on POST /orders, with Powertools' idempotency utility on the real Redis-compatible server."""

import threading
import uuid
from decimal import Decimal

import pytest

from chalicelib.adapters.idempotency import RedisIdempotencyStore
from chalicelib.api.problems import problem_for
from chalicelib.api.requests import MarketOrderRequest
from chalicelib.domain.orders import Status
from chalicelib.services import errors as refused
from chalicelib.services.idempotency import IdempotentPlacement
from chalicelib.services.orders import OrderService
from tests.fakes import FakeClock, FakeOrders, FakeQueue


class SlowQueue(FakeQueue):
    def __init__(self, gate: threading.Event):
        super().__init__()
        self.gate = gate

    def enqueue(self, order_id):
        self.gate.wait(5)
        super().enqueue(order_id)


def order(amount="1.5", **changes):
    return MarketOrderRequest(tokenIn="SOL", tokenOut="USDC", amountIn=Decimal(amount), **changes).to_command()


@pytest.fixture
def placement(redis_client):
    queue = FakeQueue()
    service = OrderService(FakeOrders(), queue, FakeClock())
    return IdempotentPlacement(service, RedisIdempotencyStore(client=redis_client)), queue


def test_the_same_key_and_body_return_the_first_response_and_place_one_order(placement):
    places, queue = placement
    key = str(uuid.uuid4())
    first = places.place("alice", key, order("1.5"))
    again = places.place("alice", key, order("1.50"))
    assert first == again and first.status is Status.PENDING  # the repeat's answer is the record Redis kept
    assert queue.sent == [first.order_id]


def test_the_same_key_with_another_body_is_refused(placement):
    places, queue = placement
    key = str(uuid.uuid4())
    places.place("alice", key, order("1.5"))
    with pytest.raises(refused.Invalid) as caught:
        places.place("alice", key, order("2"))
    assert problem_for(caught.value).status == 422
    assert len(queue.sent) == 1


def test_keys_belong_to_their_user_and_requests_without_a_key_are_not_deduplicated(placement):
    places, queue = placement
    key = str(uuid.uuid4())
    a = places.place("alice", key, order())
    b = places.place("bob", key, order())
    assert a.order_id != b.order_id
    assert places.place("alice", None, order()) != places.place("alice", None, order())
    assert len(queue.sent) == 4


def test_a_key_that_is_too_long_is_refused(placement):
    places, _ = placement
    with pytest.raises(refused.Invalid):
        places.place("alice", "k" * 256, order())


def test_a_concurrent_retry_is_told_the_first_is_still_in_progress(redis_client):
    gate = threading.Event()
    queue = SlowQueue(gate)
    places = IdempotentPlacement(OrderService(FakeOrders(), queue, FakeClock()),
                                 RedisIdempotencyStore(client=redis_client))
    key = str(uuid.uuid4())
    results = []
    first = threading.Thread(target=lambda: results.append(places.place("alice", key, order())))
    first.start()
    for _ in range(100):  # until the first request has claimed the key
        if redis_client.keys("*place-order*"):
            break
        threading.Event().wait(0.01)
    with pytest.raises(refused.Conflict):
        places.place("alice", key, order())
    gate.set()
    first.join(5)
    assert places.place("alice", key, order()) == results[0]
    assert len(queue.sent) == 1


class Killed(BaseException):
    """The invocation died mid-request: Powertools gets no chance to delete its in-progress record."""


class DyingQueue(FakeQueue):
    def __init__(self):
        super().__init__()
        self.dying = True

    def enqueue(self, order_id):
        if self.dying:
            self.dying = False
            raise Killed
        super().enqueue(order_id)


class ShortContext:
    """A Lambda context with one second left: the in-progress record expires when the invocation would."""

    def get_remaining_time_in_millis(self):
        return 1000


def test_a_retry_after_the_first_request_died_midway_gets_the_same_order(redis_client):
    import time

    orders, queue = FakeOrders(), DyingQueue()
    places = IdempotentPlacement(OrderService(orders, queue, FakeClock()), RedisIdempotencyStore(client=redis_client))
    key = str(uuid.uuid4())
    with pytest.raises(Killed):
        places.place("alice", key, order(), ShortContext())
    with pytest.raises(refused.Conflict):  # the first request might still be running
        places.place("alice", key, order(), ShortContext())
    time.sleep(1.2)  # it would have timed out by now
    second = places.place("alice", key, order(), ShortContext())
    assert list(orders.orders) == [second.order_id] and queue.sent == [second.order_id]
