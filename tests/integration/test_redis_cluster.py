"""ElastiCache Serverless is a Valkey cluster: every command and transaction must keep to one hash slot. A
single-node Valkey in cluster mode refuses cross-slot commands just as the service does, so the Redis adapters run
here against one, through redis-py's cluster client, as they do on AWS."""

import time
import uuid
from decimal import Decimal

import pytest
import redis

from chalicelib.adapters.idempotency import RedisIdempotencyStore
from chalicelib.adapters.rate_limits import RedisRateLimiter
from chalicelib.adapters.redis_store import RedisConnections
from chalicelib.api.requests import MarketOrderRequest
from chalicelib.bootstrap import redis_client
from chalicelib.domain.limits import TokenBucket
from chalicelib.services.idempotency import IdempotentPlacement
from chalicelib.services.orders import OrderService
from chalicelib.settings import Settings
from infra.local.processes import free_port
from infra.local.servers import ValkeyServer
from tests.fakes import FakeClock, FakeOrders, FakeQueue
from tests.integration.test_api_adapters import check_deliveries_of_many_orders


@pytest.fixture(scope="module")
def cluster(servers):
    port = free_port()
    server = ValkeyServer(servers.base / f"valkey-cluster-{port}", port, servers.base / "logs",
                          # The bus port defaults to port + 10000, which may not exist; name a free one.
                          extra_args=("--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                                      "--appendonly", "no"))
    server.launch()
    try:
        server.wait_ready()
        admin = redis.Redis(port=port)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster never became ready"
            time.sleep(0.05)
        admin.close()
        client = redis_client(Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_CLUSTER": "1"}))
        assert isinstance(client, redis.RedisCluster)
        yield client
        client.close()
    finally:
        server.child.stop()


def test_the_server_refuses_what_a_cluster_refuses(cluster):
    node = cluster.get_default_node()
    with redis.Redis(host=node.host, port=node.port) as plain, pytest.raises(redis.ResponseError, match="same slot"):
        plain.delete("ws:conn:a", "ws:conn:b")  # no shared hash tag: two slots


def test_connections_and_subscriptions_keep_to_one_slot_per_command(cluster):
    now = [1_700_000_000_000]
    connections = RedisConnections(cluster, lambda: now[0])
    user, first, second = f"u-{uuid.uuid4()}", f"c{uuid.uuid4()}=", f"c{uuid.uuid4()}="
    order_a, order_b = str(uuid.uuid4()), str(uuid.uuid4())

    assert connections.add_connection(first, user, max_per_user=1, read_only=True)
    assert not connections.add_connection(second, user, max_per_user=1)
    assert connections.user_of(first) == user and not connections.may_trade(first)
    with connections.delivery(order_b, joining=first):
        pass
    with connections.delivery(order_a, joining=first) as delivery:
        delivery.sent.update({first: 3, "gone": 9})
    assert connections.subscribers(order_a) == {first: 3} and connections.subscribers(order_b) == {first: 0}
    connections.unsubscribe(first, order_b)
    with connections.delivery(order_b, if_subscribed=True) as delivery:
        assert delivery is None
    assert connections.open_connections() >= 1

    connections.remove_connection(first)
    assert connections.user_of(first) is None and connections.subscribers(order_a) == {}
    assert connections.add_connection(second, user, max_per_user=1)  # the slot the first held is free again


def test_account_and_market_followers_keep_to_one_slot_per_command_and_leave_with_the_connection(cluster):
    connections = RedisConnections(cluster)
    user, first, second = f"u-{uuid.uuid4()}", f"c{uuid.uuid4()}=", f"c{uuid.uuid4()}="
    order = str(uuid.uuid4())
    for connection_id in (first, second):
        assert connections.add_connection(connection_id, user)
    connections.follow_account(first, user)
    assert connections.account_followers(user) == [first]
    connections.follow_market(first, ["raydium-sol-usdc", "meteora-sol-usdc"])
    connections.follow_market(second, None)  # every pool
    followers = connections.market_followers(["raydium-sol-usdc", "raydium-jup-usdc"])
    assert followers == {"raydium-sol-usdc": sorted([first, second]), "raydium-jup-usdc": [second]}
    # Joining after a seq: a connection that is further already stays where it is; a plain subscribe replays.
    with connections.delivery(order, joining=first, from_seq=4):
        pass
    with connections.delivery(order, joining=first, from_seq=2):
        pass
    assert connections.subscribers(order) == {first: 4}
    with connections.delivery(order, joining=first):
        pass
    assert connections.subscribers(order) == {first: 0}

    connections.remove_connection(first)
    assert connections.account_followers(user) == []
    assert connections.market_followers(["raydium-sol-usdc", "meteora-sol-usdc"]) == {
        "raydium-sol-usdc": [second], "meteora-sol-usdc": [second]}


def test_the_deliveries_of_a_batch_keep_each_script_to_its_orders_slot(cluster):
    check_deliveries_of_many_orders(cluster, RedisConnections(cluster), f"batch-{uuid.uuid4()}")


def test_rate_limits_and_idempotency_run_on_the_cluster(cluster):
    limiter = RedisRateLimiter(cluster, TokenBucket(1, 2), lambda: 1_700_000_000_000)
    key = f"user:{uuid.uuid4()}"
    assert [limiter.wait_ms(key) for _ in range(3)] == [0, 0, 1000]

    queue = FakeQueue()
    placement = IdempotentPlacement(OrderService(FakeOrders(), queue, FakeClock()),
                                    RedisIdempotencyStore(client=cluster))
    order = MarketOrderRequest(tokenIn="SOL", tokenOut="USDC", amountIn=Decimal("1.5")).to_command()
    idempotency_key = str(uuid.uuid4())
    first = placement.place("alice", idempotency_key, order)
    assert placement.place("alice", idempotency_key, order) == first and len(queue.sent) == 1
