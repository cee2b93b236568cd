"""The whole local cloud, started as `make run` starts it, driven by a real HTTP and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC

import aiohttp
import pytest
import redis

from chalicelib.adapters.redis_store import connection_key, subscribers_key
from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET
from infra.local.lambda_runtime import PROJECT_DIR
from tests.e2e.conftest import new_cloud, running_cloud

pytestmark = pytest.mark.slow

HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


def token(user: str, scope: str | None = None) -> str:
    return issue_token(user, LOCAL_JWT_SECRET, scope=scope)


def auth(user: str = "alice", scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, scope)}"}


async def place(session, cloud, user="alice", **body):
    order = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100, **body}
    async with session.post(f"{cloud.http}/orders", json=order, headers=auth(user)) as r:
        assert r.status == 202, await r.text()
        return (await r.json())["orderId"]


async def follow(session, cloud, order_id, delay=0.0, user="alice"):
    """Subscribe (after ``delay``) and collect updates until a final status; duplicates dropped by seq."""
    await asyncio.sleep(delay)
    frames = []
    async with session.ws_connect(f"{cloud.ws}?token={token(user)}") as ws:
        await ws.send_json({"action": "subscribe", "orderId": order_id})
        while True:
            message = await ws.receive(timeout=30)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            assert frame["type"] == "order.update", frame
            frames.append(frame)
            if frame["status"] in ("confirmed", "failed"):
                return frames


def is_complete(frames) -> bool:
    """Gap-free seq, and the statuses in order; a retried submission repeats ``submitted`` once per attempt."""
    seqs = [f["seq"] for f in frames]
    statuses = [s for i, s in enumerate(f["status"] for f in frames) if i == 0 or s != frames[i - 1]["status"]]
    ok_sequence = statuses == HAPPY or statuses == HAPPY[:-1] + ["failed"]
    return seqs == list(range(1, len(frames) + 1)) and ok_sequence


def test_twenty_concurrent_orders_each_stream_their_complete_ordered_sequence(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            ids = await asyncio.gather(*(place(session, cloud) for _ in range(20)))
            # half subscribe at once, half late (mid-stream or after the end): nobody may miss anything
            streams = await asyncio.gather(*(follow(session, cloud, oid, delay=0 if i % 2 else 0.3 * (i % 5))
                                             for i, oid in enumerate(ids)))
            views, ledgers = [], []
            for oid in ids:
                async with session.get(f"{cloud.http}/orders/{oid}", headers=auth()) as r:
                    views.append(await r.json())
                async with session.get(f"{cloud.http}/dex/swaps", params={"orderId": oid}) as r:
                    ledgers.append((await r.json())["swaps"])
            return ids, streams, views, ledgers

    ids, streams, views, ledgers = asyncio.run(scenario())
    assert all(is_complete(frames) for frames in streams), [[f["status"] for f in s] for s in streams]
    for frames, view, swaps in zip(streams, views, ledgers, strict=True):
        assert view["status"] == frames[-1]["status"]
        assert [e["status"] for e in view["events"]] == [f["status"] for f in frames]
        assert {q["venue"] for q in view["routing"]["quotes"]} == {"raydium", "meteora"}
        assert view["routing"]["reason"]
        if view["status"] == "confirmed":
            execution = view["execution"]
            assert len(swaps) == 1 and swaps[0]["signature"] == execution["txSignature"]
            assert swaps[0]["amountOut"] and execution["amountOut"] and execution["executedPrice"]
            assert execution["venue"] == view["routing"]["venue"] == swaps[0]["venue"]
        else:
            assert swaps == [] and view["failureReason"]
    # 10% of submissions fail and are retried up to 3 times: an order fails only with 3 failures in a row
    assert sum(v["status"] == "confirmed" for v in views) >= 18


def test_health_reports_every_dependency(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.get(f"{cloud.http}/health") as r:
            return r.status, await r.json()

    status, body = asyncio.run(scenario())
    assert status == 200 and body["status"] == "ok"
    assert set(body["checks"]) == {"postgres", "redis", "sqs"}


def test_requests_are_authenticated_and_users_see_only_their_orders(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            order_id = await place(session, cloud, user="alice")
            results = {}
            async with session.post(f"{cloud.http}/orders", json={"tokenIn": "SOL"}) as r:
                results["no token"] = r.status
            async with session.post(f"{cloud.http}/orders", json={}, headers={"Authorization": "Bearer forged"}) as r:
                results["forged"] = r.status
            async with session.get(f"{cloud.http}/orders/{order_id}", headers=auth("bob")) as r:
                results["other user"] = (r.status, r.headers["Content-Type"], await r.json())
            async with session.get(f"{cloud.http}/orders/nonsense", headers=auth()) as r:
                results["malformed id"] = r.status
            body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "-3"}
            async with session.post(f"{cloud.http}/orders", json=body, headers=auth()) as r:
                results["negative"] = (r.status, await r.json())
            return results

    results = asyncio.run(scenario())
    assert results["no token"] == 401 and results["forged"] == 401
    status, content_type, body = results["other user"]
    assert status == 404 and content_type == "application/problem+json" and body["status"] == 404
    assert results["malformed id"] == 404
    status, body = results["negative"]
    assert status == 422 and body["errors"][0]["field"] == "amountIn"


def test_a_subscriber_that_closed_is_dropped_when_a_post_to_it_gets_410(cloud):
    client = redis.Redis.from_url(cloud.redis_url)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            order_id = await place(session, cloud, amountIn="0.5")
            async with session.ws_connect(f"{cloud.ws}?token={token('alice')}") as ws:
                await ws.send_json({"action": "subscribe", "orderId": order_id})
                await ws.receive(timeout=10)
                connection_id = next(iter(client.hkeys(subscribers_key(order_id)))).decode()
            for _ in range(100):  # $disconnect has run once the connection's registration is gone
                if client.get(connection_key(connection_id)) is None:
                    break
                await asyncio.sleep(0.05)
            # Bring the registration back, as if $disconnect had been lost (it is best effort on API Gateway):
            # only a 410 from @connections can clear it now.
            client.hset(subscribers_key(order_id), connection_id, 1)
            client.set(connection_key(connection_id), "alice")
            await follow(session, cloud, order_id)  # a new subscriber: the order's events go out to both
            return order_id, connection_id

    order_id, connection_id = asyncio.run(scenario())
    assert not client.hexists(subscribers_key(order_id), connection_id)
    assert client.get(connection_key(connection_id)) is None


def test_stops_within_five_seconds_leaves_nothing_behind_and_keeps_orders():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10") as cloud:

        async def place_and_wait():
            async with aiohttp.ClientSession() as session:
                order_id = await place(session, cloud)
                await follow(session, cloud, order_id)
                return order_id

        order_id = asyncio.run(place_and_wait())
        took = cloud.stop(signal.SIGTERM)
        assert took < 5, f"took {took:.1f} s"
        leftovers = subprocess.run(["pgrep", "-f", str(cloud.data_dir)], capture_output=True, text=True).stdout
        assert leftovers == ""
        for port in cloud.ports.values():
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"

        cloud.start()  # same data folder: the order is still there

        async def read_back():
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{cloud.http}/orders/{order_id}", headers=auth()) as r:
                    return r.status, await r.json()

        status, body = asyncio.run(read_back())
        assert status == 200 and body["status"] == "confirmed"
        assert cloud.stop(signal.SIGINT) < 5


def test_a_taken_port_fails_with_a_clear_message():
    cloud = new_cloud()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", cloud.ports["HTTP_PORT"]))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "infra.local", "run"], cwd=PROJECT_DIR, env=cloud.env(),
                                capture_output=True, text=True, timeout=60)
    shutil.rmtree(cloud.data_dir.parent, ignore_errors=True)
    assert result.returncode == 2
    assert f"port {cloud.ports['HTTP_PORT']}" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_make_token_prints_a_token_the_api_accepts():
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    result = subprocess.run(["make", "-s", "token", "USER=carol"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=300)
    from chalicelib.auth import verify_token

    assert verify_token(result.stdout.strip(), LOCAL_JWT_SECRET) == "carol"


def test_dependencies_given_by_url_are_used_instead_of_started(servers):
    """With AWS_ENDPOINT_URL (and DATABASE_URL, REDIS_URL) set, the local cloud starts none of its own."""
    external = {"AWS_ENDPOINT_URL": servers.aws_endpoint, "DATABASE_URL": servers.database_url,
                "REDIS_URL": servers.redis_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    with running_cloud(**external, DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10") as cloud:
        for name in ("AWS_EMULATOR_PORT", "PG_PORT", "REDIS_PORT"):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", cloud.ports[name])) != 0, f"{name} was started"

        async def scenario():
            async with aiohttp.ClientSession() as session:
                order_id = await place(session, cloud)
                return await follow(session, cloud, order_id)

        assert [f["status"] for f in asyncio.run(scenario())] == HAPPY


def test_an_idempotency_key_makes_submission_safe_to_retry(cloud):
    key = {"Idempotency-Key": "retry-safe-1", **auth()}
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.25"}

    async def scenario():
        async with aiohttp.ClientSession() as session:
            answers = []
            for sent in (body, body, {**body, "amountIn": "0.26"}):
                async with session.post(f"{cloud.http}/orders", json=sent, headers=key) as r:
                    answers.append((r.status, await r.json()))
            return answers

    (s1, first), (s2, again), (s3, other) = asyncio.run(scenario())
    assert s1 == s2 == 202 and first == again
    assert s3 == 422 and other["errors"][0]["field"] == "Idempotency-Key"


def test_a_venue_that_keeps_failing_is_retried_three_times_through_the_queue_then_the_order_fails():
    with running_cloud(DEX_FAILURE_RATE="1", DEX_SWAP_LATENCY_MS="10", SIGNATURE_VALIDITY_SECONDS="5") as cloud:

        async def scenario():
            async with aiohttp.ClientSession() as session:
                order_id = await place(session, cloud)
                frames = await follow(session, cloud, order_id)
                async with session.get(f"{cloud.http}/dex/swaps", params={"orderId": order_id}) as r:
                    swaps = (await r.json())["swaps"]
                return frames, swaps

        frames, swaps = asyncio.run(scenario())
    # the last "submitted" says the third attempt failed too, and when the signature's fate is settled
    assert [f["status"] for f in frames] == HAPPY[:-1] + ["submitted", "submitted", "submitted", "failed"]
    assert [f["data"].get("attempt") for f in frames if f["status"] == "submitted"] == [1, 2, 3, 3]
    assert [f["data"].get("retryInSeconds") for f in frames if f["status"] == "submitted"] == [None, 1, 2, None]
    assert "outcomeKnownAt" in frames[-2]["data"] and "injected" in frames[-2]["data"]["error"]
    assert frames[-1]["data"]["attempts"] == 3 and "after 3 attempts" in frames[-1]["data"]["reason"]
    # the backoff happened in the queue: the third attempt came at least 1 + 2 s after the first
    from datetime import datetime

    at = [datetime.fromisoformat(f["at"]) for f in frames]
    assert (at[-1] - at[3]).total_seconds() >= 3
    assert swaps == []


def test_the_scheduled_sweeper_finishes_an_order_whose_message_was_lost():
    import uuid
    from datetime import datetime, timedelta

    import psycopg
    from psycopg.types.json import Jsonb

    with running_cloud(DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10", LOCAL_SCHEDULE_SECONDS="1",
                       STUCK_AFTER_SECONDS="2") as cloud:
        order_id = str(uuid.uuid4())
        long_ago = datetime.now(UTC) - timedelta(minutes=1)
        # An order accepted while its message was lost: in the database, never in the queue.
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{cloud.ports['PG_PORT']}/postgres",
                             autocommit=True) as conn:
            conn.execute(
                """INSERT INTO orders (id, user_id, type, token_in, token_out, amount_in, slippage_bps, status, seq,
                                       created_at, updated_at)
                   VALUES (%s, 'alice', 'market', 'SOL', 'USDC', 1000000000, 100, 'pending', 1, %s, %s)""",
                (order_id, long_ago, long_ago),
            )
            conn.execute("INSERT INTO order_events (order_id, seq, status, at, data) VALUES (%s, 1, 'pending', %s, %s)",
                         (order_id, long_ago, Jsonb({})))

        async def scenario():
            async with aiohttp.ClientSession() as session:
                return await follow(session, cloud, order_id)

        frames = asyncio.run(scenario())
    assert [f["status"] for f in frames] == HAPPY


def test_make_redrive_moves_dead_letters_back_to_the_orders_queue(cloud):
    import boto3

    sqs = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1") \
        .client("sqs", endpoint_url=f"http://127.0.0.1:{cloud.ports['AWS_EMULATOR_PORT']}")
    dlq = sqs.get_queue_url(QueueName="orders-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"orderId": "00000000-0000-0000-0000-000000000000"}))
    result = subprocess.run(["make", "-s", "redrive"], cwd=PROJECT_DIR, env=cloud.env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "moved 1 messages from orders-dlq back to orders" in result.stdout
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
