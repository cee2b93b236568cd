"""``make bench ARGS="--scenario sniper"``: snipers on one launch, and how soon after the open their swaps land.

Through the public API only: it lists a token (``POST /dex/tokens``, a ``dex:admin`` token), places ``--snipers``
sniper orders for it (default 100) from many users, waits until every one rests ``open``, then opens the token's
pool a few seconds ahead (``POST /dex/pools`` with ``openTime``). Every sniper passes the launch's checks, so each
swaps once, in placement order. It reports, from the venues' ledger (``GET /dex/swaps``), the time from ``openTime``
to each swap: the first sniper's, p50, p99 and the last's; and whether any swap landed before the open.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET

from .limit import _auth, _p99, _place_all

OPENS_IN_S = 5  # enough for the open to be announced well ahead, as launches are
FINAL = ("confirmed", "failed", "cancelled", "expired")


def run_sniper(args: argparse.Namespace, http: str) -> dict[str, Any]:
    return asyncio.run(_scenario(args.snipers, http, args.timeout))


async def _admin_post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {issue_token('bench-launcher', LOCAL_JWT_SECRET, scope='dex:admin')}"}
    async with session.post(url, json=body, headers=headers) as response:
        answer = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST {url} answered {response.status}: {answer}")
        return answer


async def _views(session: aiohttp.ClientSession, http: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    views = {}
    for n, order_id in enumerate(ids):
        async with session.get(f"{http}/orders/{order_id}", headers=_auth(f"resting-{n % 50}")) as response:
            if response.status == 200:
                views[order_id] = await response.json()
    return views


async def _scenario(snipers: int, http: str, timeout_s: float) -> dict[str, Any]:
    symbol = "B" + uuid.uuid4().hex[:7].upper()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await _admin_post(session, f"{http}/dex/tokens", {"symbol": symbol, "decimals": 6, "mintAuthority": "revoked",
                                                          "freezeAuthority": "revoked"})
        expires_at = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        bodies = [{"type": "sniper", "tokenIn": "USDC", "tokenOut": symbol, "amountIn": "10", "expiresAt": expires_at}
                  for _ in range(snipers)]
        print(f"placing {snipers} snipers for {symbol}, one at a time (placement order is their order)...",
              flush=True)
        ids = await _place_all(http, bodies, in_flight=1)
        deadline = time.monotonic() + timeout_s
        while any(v["status"] != "open" for v in (await _views(session, http, ids)).values()):
            if time.monotonic() > deadline:
                raise RuntimeError("the snipers did not all rest open")
            await asyncio.sleep(0.5)
        open_time = (datetime.now(UTC) + timedelta(seconds=OPENS_IN_S)).replace(microsecond=0)
        pool = await _admin_post(session, f"{http}/dex/pools", {
            "venue": "raydium", "base": symbol, "quote": "USDC", "baseAmount": "10000000", "quoteAmount": "20000",
            "openTime": open_time.isoformat()})
        print(f"pool {pool['poolId']} opens at {pool['openTime']}; waiting for the snipers...", flush=True)
        while True:
            views = await _views(session, http, ids)
            if all(v["status"] in FINAL for v in views.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        swaps: dict[str, list[dict[str, Any]]] = {}
        for order_id in ids:
            async with session.get(f"{http}/dex/swaps", params={"orderId": order_id}) as response:
                swaps[order_id] = (await response.json())["swaps"]
    opens = datetime.fromisoformat(pool["openTime"])
    landed = [(order_id, datetime.fromisoformat(s[0]["executedAt"]), s[0]["slot"])
              for order_id, s in swaps.items() if s]
    after_ms = [(at - opens).total_seconds() * 1000 for _, at, _ in landed]
    in_placement_order = [slot for _, _, slot in landed] == sorted(slot for _, _, slot in landed)
    return {
        "scenario": "sniper",
        "snipers": snipers,
        "confirmed": sum(v["status"] == "confirmed" for v in views.values()),
        "swaps": sum(len(s) for s in swaps.values()),
        "before_open": sum(ms < 0 for ms in after_ms),
        "in_placement_order": in_placement_order,
        "open_to_swap_ms": {
            "first": round(after_ms[0], 1) if after_ms else None,
            "p50": round(statistics.median(after_ms), 1) if after_ms else None,
            "p99": round(_p99(after_ms), 1) if after_ms else None,
            "last": round(max(after_ms), 1) if after_ms else None,
        },
    }


def summary(result: dict[str, Any]) -> str:
    latency = result["open_to_swap_ms"]
    return "\n".join([
        f"snipers              {result['snipers']} on one launch: {result['confirmed']} confirmed, "
        f"{result['swaps']} swaps, {result['before_open']} before the open, "
        f"{'in' if result['in_placement_order'] else 'NOT in'} placement order",
        f"open to swap         first {latency['first']} ms, p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
        f"last {latency['last']} ms",
    ])
