"""Sniper orders on the running local cloud: a token and its pool launched over the admin API, snipers waiting for the
open and swapping after it (never before) in placement order, a launch failing a check (an active mint authority, a
price above maxPrice) leaving its sniper open until the check passes or it expires."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from tests.e2e.conftest import SUMMARIES, running_cloud
from tests.e2e.test_api import auth, call
from tests.e2e.test_limit_orders import until

pytestmark = pytest.mark.slow

ADMIN = {"scope": "dex:admin"}  # an admin's token that cannot trade
FINAL = ("confirmed", "failed", "cancelled", "expired")


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


def _symbol() -> str:
    return "M" + uuid.uuid4().hex[:7].upper()


async def list_token(session, cloud, symbol, mint_authority="revoked", **fields) -> dict:
    status, _, token = await call(session, "POST", f"{cloud.http}/dex/tokens", headers=auth("launcher", **ADMIN),
                                  json={"symbol": symbol, "decimals": 6, "mintAuthority": mint_authority,
                                        "freezeAuthority": "revoked", **fields})
    assert status == 201, token
    return token


async def open_pool(session, cloud, symbol, opens_in: float, venue="raydium") -> dict:
    open_time = datetime.now(UTC) + timedelta(seconds=opens_in)
    status, _, pool = await call(session, "POST", f"{cloud.http}/dex/pools", headers=auth("launcher", **ADMIN),
                                 json={"venue": venue, "base": symbol, "quote": "USDC", "baseAmount": "1000000",
                                       "quoteAmount": "2000", "openTime": open_time.isoformat()})
    assert status == 201, pool
    return pool


async def snipe(session, cloud, user, token_out, amount="10", **terms) -> str:
    body = {"type": "sniper", "tokenIn": "USDC", "tokenOut": token_out, "amountIn": amount,
            "expiresAt": (datetime.now(UTC) + timedelta(minutes=10)).isoformat(), **terms}
    status, _, accepted = await call(session, "POST", f"{cloud.http}/orders", json=body, headers=auth(user))
    assert status == 202, accepted
    return accepted["orderId"]


async def ledger(session, cloud, order_id) -> list[dict]:
    _, _, swaps = await call(session, "GET", f"{cloud.http}/dex/swaps", params={"orderId": order_id})
    return swaps["swaps"]


def test_five_snipers_swap_after_the_open_never_before_in_placement_order_once_each(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            symbol = _symbol()
            status, _, refused = await call(session, "POST", f"{cloud.http}/dex/tokens", headers=auth("trader"),
                                            json={"symbol": symbol, "decimals": 6})
            assert status == 403 and "dex:admin" in refused["detail"]
            token = await list_token(session, cloud, symbol)
            _, _, listed = await call(session, "GET", f"{cloud.http}/tokens")
            assert {"symbol": symbol, "mint": token["mint"], "decimals": 6, "mintAuthority": "revoked",
                    "freezeAuthority": "revoked"} in listed["tokens"]
            users = ["alice", "bob", "carol", "dave", "erin"]
            orders = [await snipe(session, cloud, user, token["mint"] if n == 1 else symbol)
                      for n, user in enumerate(users)]
            pool = await open_pool(session, cloud, symbol, opens_in=10)
            opens = datetime.fromisoformat(pool["openTime"])
            assert pool["poolId"] == f"raydium-{symbol.lower()}-usdc" and Decimal(pool["price"]) == Decimal("0.002")
            status, _, early = await call(session, "GET", f"{cloud.http}/quote",
                                          params={"tokenIn": "USDC", "tokenOut": symbol, "amountIn": "1"})
            assert status == 422 and "not open yet" in early["detail"]  # unavailable, with the reason
            waiting = await until(session, cloud, orders[0], "alice", ("open",))
            assert waiting["waitingFor"] == [f"{pool['poolId']} to open at {opens.isoformat()}"]
            while datetime.now(UTC) < opens - timedelta(seconds=1):
                assert [await ledger(session, cloud, o) for o in orders] == [[]] * 5  # nothing before the open
                await asyncio.sleep(0.5)
            views = [await until(session, cloud, o, u, FINAL, timeout=30) for o, u in zip(orders, users, strict=True)]
            assert [v["status"] for v in views] == ["confirmed"] * 5, views
            entries = [await ledger(session, cloud, o) for o in orders]
            assert [len(e) for e in entries] == [1] * 5
            slots = [e[0]["slot"] for e in entries]
            assert slots == sorted(slots)  # in placement order
            landed = [datetime.fromisoformat(e[0]["executedAt"]) for e in entries]
            assert min(landed) >= opens  # never before the open
            outs = [Decimal(v["execution"]["amountOut"]) for v in views]
            assert outs == sorted(outs, reverse=True)  # each at the price the previous one left
            after = [(t - opens).total_seconds() * 1000 for t in landed]
            SUMMARIES.append(f"snipers: 5 on one launch swapped {after[0]:.0f} ms (first) to {after[-1]:.0f} ms "
                             "(last) after the open")
            assert after[-1] < 1000  # every one within a second of the open (idle cloud, 20-50 ms swaps)

    asyncio.run(scenario())


def test_an_active_mint_authority_keeps_the_sniper_open_until_it_is_revoked_then_it_fills_once(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            symbol = _symbol()
            await list_token(session, cloud, symbol, mint_authority="active")
            order = await snipe(session, cloud, "alice", symbol)
            await open_pool(session, cloud, symbol, opens_in=0)
            await asyncio.sleep(2)
            view = await until(session, cloud, order, "alice", ("open",))
            assert view["waitingFor"] == [f"{symbol}'s mint authority to be revoked"]
            assert await ledger(session, cloud, order) == []
            status, _, revoked = await call(session, "POST", f"{cloud.http}/dex/tokens/{symbol}/revoke",
                                            headers=auth("launcher", **ADMIN), json={"authority": "mint"})
            assert status == 200 and revoked["mintAuthority"] == "revoked"
            filled = await until(session, cloud, order, "alice", FINAL)
            assert filled["status"] == "confirmed" and len(await ledger(session, cloud, order)) == 1

    asyncio.run(scenario())


def test_a_max_price_below_the_launch_keeps_the_sniper_open_until_it_expires(cloud):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            symbol = _symbol()
            await list_token(session, cloud, symbol)
            order = await snipe(session, cloud, "alice", symbol, maxPrice="0.001",
                                expiresAt=(datetime.now(UTC) + timedelta(seconds=6)).isoformat())
            await open_pool(session, cloud, symbol, opens_in=0)
            await asyncio.sleep(2)
            view = await until(session, cloud, order, "alice", ("open",))
            assert "at most 0.001 USDC" in view["waitingFor"][0]
            ended = await until(session, cloud, order, "alice", FINAL, timeout=15)
            assert ended["status"] == "expired" and await ledger(session, cloud, order) == []
            status, _, late = await call(session, "POST", f"{cloud.http}/orders", headers=auth("alice"), json={
                "type": "sniper", "tokenIn": "USDC", "tokenOut": symbol, "amountIn": "1",
                "expiresAt": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()})
            assert status == 409 and "market" in late["detail"]  # its pool is open: a market order now
            # The new pair trades like any other: it is in GET /pools, and market and limit orders fill on it.
            _, _, pools = await call(session, "GET", f"{cloud.http}/pools")
            assert f"raydium-{symbol.lower()}-usdc" in [p["id"] for p in pools["pools"]]
            market = await call(session, "POST", f"{cloud.http}/orders", headers=auth("alice"), json={
                "tokenIn": "USDC", "tokenOut": symbol, "amountIn": "5", "slippageBps": 100})
            limit = await call(session, "POST", f"{cloud.http}/orders", headers=auth("alice"), json={
                "type": "limit", "tokenIn": symbol, "tokenOut": "USDC", "amountIn": "100", "limitPrice": "0.0015",
                "timeInForce": "IOC"})
            for placed in (market, limit):
                assert placed[0] == 202, placed
                done = await until(session, cloud, placed[2]["orderId"], "alice", FINAL)
                assert done["status"] == "confirmed", done

    asyncio.run(scenario())
