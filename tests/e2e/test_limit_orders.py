"""Limit orders on the running local cloud, over HTTP and WebSocket: an order resting and then filled when another
user's swaps (POST /dex/swaps) move the price (through the venues' pool events and the trigger function), GTD
expiring on time, IOC filled in part, FOK expired, a cancel while open, and the list of resting orders."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import aiohttp
import pytest

from tests.e2e.conftest import SUMMARIES, running_cloud
from tests.e2e.test_api import auth, call

pytestmark = pytest.mark.slow

FINAL = ("confirmed", "failed", "cancelled", "expired")
MICRO = Decimal("0.000001")


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


async def price_for(session, cloud, amount: str) -> Decimal:
    """The average USDC per SOL the venues pay now for ``amount`` SOL."""
    _, _, quote = await call(session, "GET", f"{cloud.http}/quote",
                             params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": amount})
    return Decimal(quote["outAmount"]) / Decimal(amount)


async def place(session, cloud, user, body) -> dict:
    status, _, answer = await call(session, "POST", f"{cloud.http}/orders", json=body, headers=auth(user))
    assert status == 202, answer
    return answer


async def until(session, cloud, order_id, user, statuses, timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, _, view = await call(session, "GET", f"{cloud.http}/orders/{order_id}", headers=auth(user))
        if view["status"] in statuses:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} is {view['status']}, not {statuses}")


def test_a_resting_order_fills_when_another_users_trades_move_the_price(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            limit = (await price_for(session, cloud, "10") * Decimal("1.01")).quantize(MICRO, ROUND_UP)
            async with session.ws_connect(f"{cloud.ws}?token={auth('alice')['Authorization'][7:]}") as ws:
                await ws.send_json({"action": "submit", "order": {
                    "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "10",
                    "limitPrice": str(limit)}})
                accepted = await ws.receive_json(timeout=10)
                order_id = accepted["orderId"]
                frames = []
                while not frames or frames[-1]["status"] != "open":
                    frames.append(await ws.receive_json(timeout=10))
                _, _, resting = await call(session, "GET", f"{cloud.http}/orders/{order_id}", headers=auth("alice"))
                _, _, listed = await call(session, "GET", f"{cloud.http}/orders?status=open&type=limit",
                                          headers=auth("alice"))
                # Bob, another trader, buys SOL straight on the pools until the price passes alice's limit.
                bob_swaps = []
                for pool_id in ("meteora-sol-usdc", "raydium-sol-usdc") * 3:
                    status, _, swap = await call(session, "POST", f"{cloud.http}/dex/swaps", headers=auth("bob"),
                                                 json={"poolId": pool_id, "tokenIn": "USDC", "amountIn": "150000"})
                    assert status == 201, swap
                    bob_swaps.append(swap)
                    if await price_for(session, cloud, "10") >= limit:
                        break
                while frames[-1]["status"] not in FINAL:
                    frames.append(await ws.receive_json(timeout=20))
            _, _, filled = await call(session, "GET", f"{cloud.http}/orders/{order_id}", headers=auth("alice"))
            return limit, resting, listed, frames, filled, bob_swaps

    limit, resting, listed, frames, filled, bob_swaps = asyncio.run(scenario())
    assert resting["status"] == "open" and resting["side"] == "sell" and resting["timeInForce"] == "GTC"
    assert Decimal(resting["executable"]["shortfallBps"]) > 0
    assert resting["orderId"] in [o["orderId"] for o in listed["orders"]]
    assert [f["status"] for f in frames] == ["pending", "open", "triggered", "routing", "building", "submitted",
                                              "confirmed"]
    assert Decimal(filled["execution"]["amountOut"]) >= limit * 10  # never below the limit
    triggered_at = datetime.fromisoformat(frames[2]["at"])
    assert all(s["orderId"] == "wallet:bob" and s["tokenOut"] == "SOL" for s in bob_swaps)
    last_swap_at = max(datetime.fromisoformat(s["executedAt"]) for s in bob_swaps)
    latency = (triggered_at - last_swap_at).total_seconds()
    SUMMARIES.append(f"limit order: triggered {latency * 1000:.0f} ms after the swap that moved the price")
    assert 0 < latency < 1.0


def test_gtd_expires_within_two_seconds_of_its_time_and_a_cancel_while_open_ends_it(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            far = (await price_for(session, cloud, "1") * 2).quantize(MICRO)
            expires_at = datetime.now(UTC) + timedelta(seconds=3)
            gtd = await place(session, cloud, "carol", {
                "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": str(far),
                "timeInForce": "GTD", "expiresAt": expires_at.isoformat()})
            gtc = await place(session, cloud, "carol", {
                "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "limitPrice": str(far)})
            await until(session, cloud, gtc["orderId"], "carol", ("open",))
            cancelled = await call(session, "DELETE", f"{cloud.http}/orders/{gtc['orderId']}", headers=auth("carol"))
            again = await call(session, "DELETE", f"{cloud.http}/orders/{gtc['orderId']}", headers=auth("carol"))
            expired = await until(session, cloud, gtd["orderId"], "carol", FINAL, timeout=15)
            swaps = [(await call(session, "GET", f"{cloud.http}/dex/swaps?orderId={o['orderId']}"))[2]["swaps"]
                     for o in (gtd, gtc)]
            return expires_at, expired, cancelled, again, swaps

    expires_at, expired, cancelled, again, swaps = asyncio.run(scenario())
    assert expired["status"] == "expired" and [e["status"] for e in expired["events"]] == ["pending", "open",
                                                                                          "expired"]
    late = (datetime.fromisoformat(expired["events"][-1]["at"]) - expires_at).total_seconds()
    SUMMARIES.append(f"GTD order: expired {late * 1000:.0f} ms after its expiresAt")
    assert 0 <= late <= 2.0
    assert cancelled[0] == 200 and cancelled[2]["status"] == "cancelled" and again[0] == 200
    assert swaps == [[], []]


def test_ioc_fills_in_part_and_fok_expires_when_not_all_of_it_can_fill(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            # The average price of 1,500 SOL: a 3,000 SOL IOC at it can fill about half.
            half = (await price_for(session, cloud, "1500")).quantize(MICRO, ROUND_DOWN)
            ioc = await place(session, cloud, "dave", {
                "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "3000", "limitPrice": str(half),
                "timeInForce": "IOC"})
            fok = await place(session, cloud, "dave", {
                "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "3000",
                "limitPrice": str(half), "timeInForce": "FOK"})
            return half, *[await until(session, cloud, o["orderId"], "dave", FINAL) for o in (ioc, fok)]

    half, ioc, fok = asyncio.run(scenario())
    assert ioc["status"] == "confirmed", ioc
    confirmed = ioc["events"][-1]["data"]
    filled = Decimal(confirmed["filledAmountIn"])
    assert 0 < filled < 3000 and filled + Decimal(confirmed["unfilledAmountIn"]) == 3000
    assert Decimal(ioc["execution"]["amountOut"]) >= (half * filled).quantize(MICRO, ROUND_DOWN)
    assert fok["status"] == "expired" and [e["status"] for e in fok["events"]] == ["pending", "routing", "expired"]


def test_simulated_market_activity_trades_on_every_pool_through_the_public_api():
    with running_cloud(MARKET_ACTIVITY_PER_SECOND="10", DEX_SWAP_LATENCY_MS="1", DEX_QUOTE_LATENCY_MS="1") as active:
        async def scenario():
            async with aiohttp.ClientSession() as session:
                deadline, swaps = time.monotonic() + 20, []
                while time.monotonic() < deadline and len({s["poolId"] for s in swaps}) < 6:
                    await asyncio.sleep(0.5)
                    _, _, ledger = await call(session, "GET", f"{active.http}/dex/swaps?orderId=wallet:market-activity")
                    swaps = ledger["swaps"]
                return swaps

        swaps = asyncio.run(scenario())
        stopped_in = active.stop()
    assert len({s["poolId"] for s in swaps}) == 6  # every pool traded
    assert {s["tokenIn"] for s in swaps} >= {"SOL", "USDC"}  # both ways
    assert stopped_in < 10


def test_every_time_in_force_submitted_over_the_websocket_streams_to_its_end(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            near = (await price_for(session, cloud, "1")).quantize(MICRO)
            far = near * 2
            expires_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            orders = {
                "GTD": {"limitPrice": str(far), "timeInForce": "GTD", "expiresAt": expires_at},
                "IOC": {"limitPrice": str((near * Decimal("0.98")).quantize(MICRO)), "timeInForce": "IOC"},
                "FOK": {"limitPrice": str(far), "timeInForce": "FOK"},
            }
            streamed: dict[str, list[str]] = {}
            async with session.ws_connect(f"{cloud.ws}?token={auth('erin')['Authorization'][7:]}") as ws:
                for tif, terms in orders.items():
                    await ws.send_json({"action": "submit", "idempotencyKey": f"ws-{tif}", "order": {
                        "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", **terms}})
                ids: dict[str, str] = {}
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and (len(ids) < 3 or any(
                        not streamed.get(oid) or streamed[oid][-1] not in FINAL for oid in ids.values())):
                    frame = await ws.receive_json(timeout=20)
                    if frame["type"] == "order.accepted":
                        ids[frame["idempotencyKey"].removeprefix("ws-")] = frame["orderId"]
                    elif frame["type"] == "order.update":
                        streamed.setdefault(frame["orderId"], []).append(frame["status"])
            return {tif: streamed.get(order_id, []) for tif, order_id in ids.items()}

    streams = asyncio.run(scenario())
    assert streams["GTD"] == ["pending", "open", "expired"]
    assert streams["IOC"] == ["pending", "routing", "building", "submitted", "confirmed"]
    assert streams["FOK"] == ["pending", "routing", "expired"]
