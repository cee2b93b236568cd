"""The full API's adapters against the real servers: rate limits and connection limits in Valkey, pages and
statistics in PostgreSQL, queue depths in the emulator, and the Prometheus text they become."""

import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import botocore.session
import pytest
import redis
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from chalicelib.adapters.order_statistics import PostgresOrderStatistics
from chalicelib.adapters.postgres import PostgresOrders
from chalicelib.adapters.prometheus import render
from chalicelib.adapters.rate_limits import RedisRateLimiter
from chalicelib.adapters.redis_store import CONNECTION_MAX_AGE_MS, RedisConnections, connection_key
from chalicelib.adapters.sqs import QuickSendSqs, SqsOrderQueue
from chalicelib.bootstrap import REDIS_CONNECTIONS, redis_client
from chalicelib.domain.limits import TokenBucket
from chalicelib.domain.orders import Order, OrderEvent, OrderType, Status
from chalicelib.domain.tokens import TOKENS
from chalicelib.services.errors import NotFound
from chalicelib.services.metrics import LATENCY_BOUNDS, MetricsReader
from chalicelib.services.notifications import Notifier
from chalicelib.settings import Settings


class Millis:
    def __init__(self, start: int = 1_700_000_000_000):
        self.now = start

    def __call__(self) -> int:
        return self.now


def test_the_redis_token_bucket_agrees_with_the_domains(redis_client):
    clock = Millis()
    bucket = TokenBucket(rate=4, burst=5)
    limiter = RedisRateLimiter(redis_client, bucket, clock)
    tokens, last = float(bucket.burst), clock.now
    for step in [0, 0, 0, 0, 0, 0, 0, 100, 250, 0, 0, 1_000, 0, 0, 0, 0, 0, 0, 3_000]:
        clock.now += step
        expected_tokens, expected_wait = bucket.take(tokens, last, clock.now)
        tokens, last = expected_tokens, clock.now
        assert limiter.wait_ms("user:alice") == expected_wait
    assert limiter.wait_ms("user:bob") == 0  # buckets are per key
    assert 0 < redis_client.pttl("rate:user:alice") <= bucket.idle_ms + 1000  # idle buckets are forgotten


def test_connections_per_user_are_limited_and_counted_and_forgotten_after_two_hours(redis_client):
    clock = Millis()
    connections = RedisConnections(redis_client, clock)
    assert connections.add_connection("a1", "alice", max_per_user=2)
    assert connections.add_connection("a2", "alice", max_per_user=2, read_only=True)
    assert not connections.add_connection("a3", "alice", max_per_user=2)
    assert connections.add_connection("b1", "bob", max_per_user=2)
    assert connections.open_connections() == 3
    assert connections.may_trade("a1") and not connections.may_trade("a2")
    connections.remove_connection("a1")
    assert connections.add_connection("a3", "alice", max_per_user=2)
    assert connections.open_connections() == 3
    # A connection whose $disconnect never came is gone after API Gateway's 2-hour limit.
    clock.now += CONNECTION_MAX_AGE_MS + 1
    assert connections.add_connection("a4", "alice", max_per_user=2)
    assert connections.open_connections() == 1


def test_a_connections_user_is_read_once_and_forgotten_with_the_connection(redis_client):
    connections = RedisConnections(redis_client)
    assert connections.user_of("u1") is None  # not registered: not remembered either
    assert connections.add_connection("u1", "ursula")
    assert connections.user_of("u1") == "ursula"
    redis_client.delete(connection_key("u1"))  # the key is not read again for this connection's messages
    assert connections.user_of("u1") == "ursula"
    connections.remove_connection("u1")
    assert connections.user_of("u1") is None


def test_deliveries_of_one_order_take_turns_and_record_only_live_subscriptions(redis_client):
    connections = RedisConnections(redis_client)
    lock = "ws:lock:{o1}"
    with connections.delivery("o1", if_subscribed=True) as nobody:
        assert nobody is None and not redis_client.exists(lock)  # an order nobody follows is not locked
    seen, second_began = [], threading.Event()

    def second_turn():
        with connections.delivery("o1", if_subscribed=True) as second:
            second_began.set()
            seen.append(second.cursors)

    with connections.delivery("o1", joining="c1") as first:
        assert first.cursors == {"c1": 0} and redis_client.sismember("ws:conn:{c1}:orders", "o1")
        waiting = threading.Thread(target=second_turn)
        waiting.start()
        assert not second_began.wait(0.2)  # it waits for the first turn to end
        first.sent.update({"c1": 3, "left": 5})
    waiting.join(5)
    assert seen == [{"c1": 3}]  # what the first sent; "left" is not subscribed, so it is not recorded
    assert not redis_client.exists(lock)

    with connections.delivery("o1") as overran:
        redis_client.set(lock, "the next holder")  # as if this turn outlived its lock and another took it
        overran.sent["c1"] = 4
    assert redis_client.get(lock) == b"the next holder" and connections.subscribers("o1") == {"c1": 4}
    redis_client.delete(lock)
    with connections.delivery("o1", joining="c1") as again:
        assert again.cursors == {"c1": 0}  # subscribing again replays from the start


def check_deliveries_of_many_orders(redis_client, connections, prefix):
    """Issue 21: the bookkeeping of a batch's orders in one round trip each way."""
    followed, busy, nobody = f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    for order_id in (followed, busy):
        with connections.delivery(order_id, joining=f"{prefix}-conn"):
            pass
    redis_client.set(f"ws:lock:{{{busy}}}", "another delivery")
    with connections.deliveries([followed, busy, nobody]) as (taken, waiting):
        assert set(taken) == {followed} and waiting == [busy]  # nobody follows the third: left out, not locked
        assert taken[followed].cursors == {f"{prefix}-conn": 0}
        assert redis_client.exists(f"ws:lock:{{{followed}}}") and not redis_client.exists(f"ws:lock:{{{nobody}}}")
        taken[followed].sent.update({f"{prefix}-conn": 5, f"{prefix}-left": 2})
    assert connections.subscribers(followed) == {f"{prefix}-conn": 5}  # only live subscriptions recorded
    assert not redis_client.exists(f"ws:lock:{{{followed}}}")  # released
    assert redis_client.get(f"ws:lock:{{{busy}}}") == b"another delivery"  # not taken from its holder


class CountingConnection(redis.Connection):
    """A connection that counts what it writes: one write is one round trip (a pipeline is written at once)."""

    writes = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


def test_a_subscription_and_a_publish_each_take_two_round_trips(servers, redis_client):
    client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(servers.redis_url,
                                                                        connection_class=CountingConnection))
    connections = RedisConnections(client)
    with connections.delivery("warm-up", joining="c0"):
        pass  # the connection's handshake and loading the scripts into Valkey are not counted
    CountingConnection.writes = 0
    with connections.delivery("counted", joining="c1") as delivery:
        assert CountingConnection.writes == 1  # the connection's list and the lock with the cursors, together
        delivery.sent["c1"] = 1
    assert CountingConnection.writes == 2
    assert client.smembers("ws:conn:{c1}:orders") == {b"counted"} and 0 < client.ttl("ws:conn:{c1}:orders")
    assert connections.subscribers("counted") == {"c1": 1}
    CountingConnection.writes = 0
    with connections.delivery("counted", if_subscribed=True) as delivery:
        delivery.sent["c1"] = 2
    assert CountingConnection.writes == 2 and connections.subscribers("counted") == {"c1": 2}
    client.close()


def test_deliveries_of_many_orders_take_each_free_lock_in_one_round_trip(redis_client):
    check_deliveries_of_many_orders(redis_client, RedisConnections(redis_client), "batch")


def test_quick_sends_reach_the_queue_and_are_refused_as_botocore_reports_it(sqs):
    quick = QuickSendSqs(sqs, botocore.session.get_session().get_credentials())
    name = f"quick-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    answer = quick.send_message(QueueUrl=url, MessageBody='{"orderId": "o1"}')
    message, = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert (message["MessageId"], message["Body"]) == (answer["MessageId"], '{"orderId": "o1"}')
    assert answer["MD5OfMessageBody"] == hashlib.md5(b'{"orderId": "o1"}').hexdigest()
    with pytest.raises(ClientError) as quick_refusal:
        quick.send_message(QueueUrl=f"{url}-missing", MessageBody="x")
    with pytest.raises(ClientError) as botocore_refusal:
        sqs.send_message(QueueUrl=f"{url}-missing", MessageBody="x")
    assert quick_refusal.value.response["Error"]["Code"] == botocore_refusal.value.response["Error"]["Code"]
    assert quick.get_queue_url(QueueName=name)["QueueUrl"] == url  # every other call is botocore's


def test_an_orders_timer_message_arrives_only_after_its_delay(sqs):
    quick = QuickSendSqs(sqs, botocore.session.get_session().get_credentials())
    name = f"timer-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue = SqsOrderQueue(lambda: quick, name, url)
    queue.enqueue("o-later", delay_seconds=2)
    queue.enqueue("o-now")
    first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["orderId"] for m in first] == ["o-now"]
    deadline, later = time.monotonic() + 10, []
    while not later and time.monotonic() < deadline:
        later = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["orderId"] for m in later] == ["o-later"]


def test_more_callers_than_redis_connections_wait_for_one_instead_of_failing(servers):
    client = redis_client(Settings.from_env({"REDIS_URL": servers.redis_url}))
    failures = []

    def call():
        try:
            client.blpop(f"empty-{uuid.uuid4()}", timeout=0.2)  # holds its connection for the whole wait
        except Exception as error:
            failures.append(error)

    callers = [threading.Thread(target=call) for _ in range(REDIS_CONNECTIONS + 50)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert failures == [] and len(client.connection_pool._connections) <= REDIS_CONNECTIONS
    client.close()


def _order(orders: PostgresOrders, user: str, created: datetime) -> Order:
    order = Order(str(uuid.uuid4()), user, OrderType.MARKET, TOKENS["SOL"], TOKENS["USDC"], 10**9, 50,
                  Status.PENDING, 1, created, created)
    orders.add(order, OrderEvent(order.id, 1, Status.PENDING, created, {}))
    return order


def test_pages_come_newest_first_with_ties_broken_by_id_and_filters(db):
    orders = PostgresOrders(db)
    user = f"pager-{uuid.uuid4()}"
    start = datetime.now(UTC)
    same_instant = [_order(orders, user, start) for _ in range(3)]  # cursors must not skip or repeat ties
    later = [_order(orders, user, start + timedelta(seconds=i + 1)) for i in range(4)]
    expected = [o.id for o in reversed(later)] + sorted((o.id for o in same_instant), reverse=True)
    seen, before = [], None
    while True:
        page = orders.page(user, [], [], before, 2)
        if not page:
            break
        seen += [o.id for o in page]
        before = (page[-1].created_at, page[-1].id)
    assert seen == expected
    cancelled = later[0]
    orders.transition(cancelled.id, Status.PENDING, Status.CANCELLED, start + timedelta(seconds=9), {})
    assert [o.id for o in orders.page(user, [Status.CANCELLED], ["market"], None, 10)] == [cancelled.id]
    assert orders.page(user, [Status.CONFIRMED], [], None, 10) == []


def test_statistics_for_metrics_come_from_the_orders_and_the_queues(db, sqs, redis_client):
    orders = PostgresOrders(db)
    start = datetime.now(UTC) - timedelta(hours=1)
    order = _order(orders, f"stats-{uuid.uuid4()}", start)
    orders.transition(order.id, Status.PENDING, Status.ROUTING, start + timedelta(seconds=0.2), {})
    orders.transition(order.id, Status.ROUTING, Status.FAILED, start + timedelta(seconds=3), {}, attempts=3)
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"orderId": order.id}))
    sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    connections = RedisConnections(redis_client)
    connections.add_connection("c1", "alice")
    queues = {name: SqsOrderQueue(lambda: sqs, name), f"{name}-dlq": SqsOrderQueue(lambda: sqs, f"{name}-dlq")}
    reader = MetricsReader(PostgresOrderStatistics(db), queues, f"{name}-dlq", connections)
    snapshot = reader.snapshot()
    assert snapshot.queues[name]["visible"] == 3 and snapshot.dead_lettered == 1 and snapshot.connections == 1
    assert snapshot.retries["retries"] >= 2

    families = {f.name: f for f in text_string_to_metric_families(render(snapshot).decode())}
    assert {"order_engine_orders", "order_engine_order_status_seconds", "order_engine_queue_messages",
            "order_engine_dead_lettered_messages", "order_engine_websocket_connections",
            "order_engine_swap_retries", "order_engine_sweeps"} <= set(families)
    failed = {s.labels["le"]: s.value for s in families["order_engine_order_status_seconds"].samples
              if s.name.endswith("_bucket") and s.labels["status"] == "failed"}
    assert failed["+Inf"] >= 1 and failed["+Inf"] >= failed[repr(LATENCY_BOUNDS[-1])]
    assert failed["2.5"] < failed["5.0"]  # this order failed 3 s after its submission


def test_subscribing_reads_ones_own_order_once_and_refuses_anothers_leaving_nothing_in_redis(db, redis_client):
    orders = PostgresOrders(db)
    start = datetime.now(UTC)
    alices = _order(orders, "alice-own", start)
    orders.transition(alices.id, Status.PENDING, Status.ROUTING, start + timedelta(seconds=1), {})
    assert [e.seq for e in orders.own_events(alices.id, "alice-own")] == [1, 2]
    assert [e.seq for e in orders.own_events(alices.id, "alice-own", after_seq=1)] == [2]
    assert orders.own_events(alices.id, "alice-own", after_seq=2) == []  # hers, nothing after seq 2
    assert orders.own_events(alices.id, "bob-own") is None
    assert orders.own_events(str(uuid.uuid4()), "alice-own") is None

    class Frames:
        def __init__(self) -> None:
            self.sent: list[tuple[str, dict]] = []

        def send(self, connection_id: str, payload: dict) -> bool:
            self.sent.append((connection_id, payload))
            return True

    connections, push = RedisConnections(redis_client), Frames()
    notifier = Notifier(orders, connections, push)
    connections.add_connection("bob-conn", "bob-own")
    with pytest.raises(NotFound):
        notifier.subscribe_own("bob-conn", "bob-own", alices.id)
    assert push.sent == [] and connections.subscribers(alices.id) == {}
    assert redis_client.exists(connection_key("bob-conn", ":orders"), f"ws:lock:{{{alices.id}}}") == 0
    connections.add_connection("alice-conn", "alice-own")
    notifier.subscribe_own("alice-conn", "alice-own", alices.id)
    assert [(c, p["seq"]) for c, p in push.sent] == [("alice-conn", 1), ("alice-conn", 2)]
    assert connections.subscribers(alices.id) == {"alice-conn": 2}
