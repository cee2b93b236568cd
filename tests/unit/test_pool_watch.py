"""Pool events go out only for the pools someone listens to: a pair with a resting order, a followed pool."""

import json

import pytest

from chalicelib.adapters.pool_events import SqsPoolEvents
from chalicelib.services.pool_watch import WatchedPoolEvents
from tests.fakes import FakePoolEvents
from tests.unit.test_services import World
from tests.unit.test_triggers import rest

SOL_USDC_POOLS = ("meteora-sol-usdc", "raydium-sol-usdc")


@pytest.fixture
def world():
    return World()


@pytest.fixture
def sent():
    return FakePoolEvents()


def watched(world, sent):
    return WatchedPoolEvents(sent, world.orders, world.connections)


def change_every_pool(events):
    for pool_id in SOL_USDC_POOLS:
        events.changed(pool_id, "SOL", "USDC")
    events.changed("raydium-jup-usdc", "JUP", "USDC")


def test_changes_nobody_listens_to_are_not_sent(world, sent):
    events = watched(world, sent)
    change_every_pool(events)
    assert events.flush() == 0 and sent.published == []


def test_a_resting_order_has_its_pairs_changes_sent_and_no_other(world, sent):
    rest(world, price="500")  # sells SOL far above the market
    events = watched(world, sent)
    change_every_pool(events)
    assert events.flush() == 1 and sent.published == [("SOL", "USDC")]
    assert events.flush() == 0  # sent once


def test_a_followed_pool_has_its_changes_sent(world, sent):
    world.connections.follow_market("c1", ["raydium-jup-usdc"])
    events = watched(world, sent)
    change_every_pool(events)
    events.flush()
    assert sent.published == [("JUP", "USDC")]


def test_a_follower_of_every_pool_has_every_change_sent(world, sent):
    world.connections.follow_market("c1", None)
    events = watched(world, sent)
    change_every_pool(events)
    events.flush()
    assert sent.published == [("JUP", "USDC"), ("SOL", "USDC")]


def test_when_nobody_can_say_who_listens_every_change_is_sent(world, sent):
    class OrdersAway:
        def any_resting(self, base, quote):
            raise ConnectionError("the database is away")

    events = WatchedPoolEvents(sent, OrdersAway(), world.connections)
    change_every_pool(events)
    events.flush()
    assert sent.published == [("JUP", "USDC"), ("SOL", "USDC")]


def test_a_wake_up_is_always_sent(world, sent):
    watched(world, sent).wake("MEME", "SOL", 3)
    assert sent.wakeups == [("MEME", "SOL", 3)]


class RecordingSqs:
    """The SQS client's two calls the pool events make; ``fail_next`` refuses the next send."""

    def __init__(self):
        self.bodies = []
        self.fail_next = False

    def get_queue_url(self, QueueName):  # noqa: N803  # boto3's parameter names
        return {"QueueUrl": f"local/{QueueName}"}

    def send_message(self, QueueUrl, MessageBody, **_):  # noqa: N803
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the queue is away")
        self.bodies.append(json.loads(MessageBody))


def test_the_queue_gets_one_event_of_the_watched_pools_and_a_failed_send_is_kept_for_the_next(world):
    sqs = RecordingSqs()
    events = WatchedPoolEvents(SqsPoolEvents(lambda: sqs, "pool-events"), world.orders, world.connections)
    world.connections.follow_market("c1", ["raydium-sol-usdc"])
    change_every_pool(events)
    sqs.fail_next = True
    with pytest.raises(ConnectionError):
        events.flush()
    assert events.flush() == 1
    assert sqs.bodies == [{"pools": [{"poolId": "raydium-sol-usdc", "base": "SOL", "quote": "USDC"}]}]
