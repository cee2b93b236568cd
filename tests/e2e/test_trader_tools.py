"""Trader tools on the running local cloud (issue 20): client order ids over HTTP; the WebSocket's account stream
(a client that drops mid-burst and reconnects with ``since`` misses nothing), market stream and cancel."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest

from tests.e2e.conftest import running_cloud
from tests.e2e.test_api import auth, call, until_final

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50",
                       RATE_LIMIT_PER_SECOND="1000", RATE_LIMIT_BURST="1000") as running:
        yield running


def test_a_client_order_id_finds_filters_and_cancels_the_order_and_a_taken_one_answers_409(cloud):
    cid, resting_cid = f"bot-{uuid.uuid4().hex[:8]}", f"rest-{uuid.uuid4().hex[:8]}"

    async def scenario():
        async with aiohttp.ClientSession() as session:
            body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5", "clientOrderId": cid}
            status, _, placed = await call(session, "POST", f"{cloud.http}/orders", json=body, headers=auth())
            assert status == 202, placed
            taken = await call(session, "POST", f"{cloud.http}/orders", json={**body, "amountIn": "1"},
                               headers=auth())
            mine = await call(session, "GET", f"{cloud.http}/orders/by-client-id/{cid}", headers=auth())
            listed = await call(session, "GET", f"{cloud.http}/orders", params={"clientOrderId": cid},
                                headers=auth())
            others = await call(session, "GET", f"{cloud.http}/orders/by-client-id/{cid}", headers=auth("bob"))
            final = await until_final(session, cloud, placed["orderId"])
            limit = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": "900",
                     "clientOrderId": resting_cid}
            status, _, resting = await call(session, "POST", f"{cloud.http}/orders", json=limit, headers=auth())
            assert status == 202, resting
            cancelled = await call(session, "DELETE", f"{cloud.http}/orders/by-client-id/{resting_cid}",
                                   headers=auth())
            return placed, taken, mine, listed, others, final, resting, cancelled

    placed, taken, mine, listed, others, final, resting, cancelled = asyncio.run(scenario())
    assert taken[0] == 409 and placed["orderId"] in taken[2]["detail"]
    assert taken[2]["errors"][0]["field"] == "clientOrderId"
    assert mine[0] == 200 and mine[2]["orderId"] == placed["orderId"] and mine[2]["clientOrderId"] == cid
    assert [o["orderId"] for o in listed[2]["orders"]] == [placed["orderId"]]
    assert others[0] == 404  # another user's client order id is as invisible as their order
    assert final["status"] == "confirmed" and final["clientOrderId"] == cid
    assert cancelled[0] == 200 and cancelled[2]["orderId"] == resting["orderId"]
    assert cancelled[2]["status"] == "cancelled"


def ws_url(cloud, user: str) -> str:
    return f"{cloud.ws}?token={auth(user)['Authorization'][7:]}"


async def frames_until(ws, done, timeout: float = 60.0) -> list[dict]:
    """Reads frames until ``done(frames)`` or the timeout."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(frames) and time.monotonic() < deadline:
        try:
            frames.append(await ws.receive_json(timeout=max(0.1, deadline - time.monotonic())))
        except (TimeoutError, TypeError):
            break
    return frames


def test_an_account_stream_that_drops_mid_burst_and_reconnects_with_since_misses_nothing(cloud):
    user = f"burst-{uuid.uuid4().hex[:6]}"
    orders = 200

    async def scenario():
        async with aiohttp.ClientSession() as session:
            placed: list[str] = []

            async def place(n: int) -> None:
                body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.05", "slippageBps": 300,
                        "clientOrderId": f"b{n}"}
                status, _, answer = await call(session, "POST", f"{cloud.http}/orders", json=body,
                                               headers=auth(user))
                assert status == 202, answer
                placed.append(answer["orderId"])

            async with session.ws_connect(ws_url(cloud, user)) as first:
                await first.send_json({"action": "subscribeAccount"})
                burst = asyncio.gather(*(place(n) for n in range(orders)))
                before = await frames_until(first, lambda f: sum(x["type"] == "order.update" for x in f) >= 150)
            # Dropped mid-burst; orders go on meanwhile.
            await asyncio.sleep(0.5)
            cursor = [f for f in before if f["type"] == "order.update"][-1]["at"]
            async with session.ws_connect(ws_url(cloud, user)) as second:
                await second.send_json({"action": "subscribeAccount", "since": cursor})
                await burst

                def all_final(frames: list[dict]) -> bool:
                    finals = {(f["orderId"]) for f in before + frames
                              if f["type"] == "order.update" and f["status"] in ("confirmed", "failed")}
                    return len(finals) == orders

                after = await frames_until(second, all_final, timeout=90)
            stored = {}
            for order_id in placed:
                view = await until_final(session, cloud, order_id, user=user)
                stored[order_id] = [e["seq"] for e in view["events"]]
            return before, after, stored

    before, after, stored = asyncio.run(scenario())
    expected = {(order_id, seq) for order_id, seqs in stored.items() for seq in seqs}
    seen_before = [(f["orderId"], f["seq"]) for f in before if f["type"] == "order.update"]
    seen_after = [(f["orderId"], f["seq"]) for f in after if f["type"] == "order.update"]
    assert set(seen_before) | set(seen_after) == expected  # every update of every order, after dropping duplicates
    assert len(seen_after) == len(set(seen_after)) and len(seen_before) == len(set(seen_before))
    created = {f["orderId"] for f in before + after if f["type"] == "order.created"}
    assert created <= set(stored) and len(created) >= 1
    by_order: dict[str, list[int]] = {}
    for order_id, seq in seen_after:
        by_order.setdefault(order_id, []).append(seq)
    assert all(seqs == sorted(seqs) for seqs in by_order.values())  # each order's updates in seq order


def test_the_market_stream_shows_a_pools_change_and_cancel_over_the_socket_answers_like_delete(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(cloud, "carol")) as ws:
                await ws.send_json({"action": "subscribeMarket", "poolIds": ["raydium-jup-usdc"]})
                first = await frames_until(ws, lambda f: any(x["type"] == "pool.update" for x in f), timeout=10)
                status, _, swap = await call(session, "POST", f"{cloud.http}/dex/swaps", headers=auth("dave"),
                                             json={"poolId": "raydium-jup-usdc", "tokenIn": "USDC",
                                                   "amountIn": "5000"})
                assert status == 201, swap
                changed = await frames_until(ws, lambda f: any(x["type"] == "pool.update" for x in f), timeout=10)
                limit = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1",
                         "limitPrice": "900"}
                _, _, resting = await call(session, "POST", f"{cloud.http}/orders", json=limit,
                                           headers=auth("carol"))
                await ws.send_json({"action": "cancel", "orderId": resting["orderId"]})
                answer = await frames_until(ws, lambda f: any(x["type"] in ("order.cancel", "error") for x in f),
                                            timeout=10)
                return first, changed, swap, answer

    first, changed, swap, answer = asyncio.run(scenario())
    before = next(f for f in first if f["type"] == "pool.update")
    after = next(f for f in changed if f["type"] == "pool.update")
    assert after["poolId"] == "raydium-jup-usdc" and after["slot"] == swap["slot"] > before["slot"]
    assert float(after["price"]) > float(before["price"])  # USDC bought JUP: its price rose
    cancel = next(f for f in answer if f["type"] in ("order.cancel", "error"))
    assert cancel["type"] == "order.cancel" and cancel["status"] == 200 and cancel["order"]["status"] == "cancelled"
