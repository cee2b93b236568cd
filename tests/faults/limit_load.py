"""Limit orders under a fault: resting orders near the market while other traders' swaps push the price both ways
(so orders trigger, and some rest again), with cancels and short expiries fired at random against them. Measured
as the market orders' cases are, plus: no swap ever fills below its order's limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from tests.faults.harness import Report, Subscriber, _auth, _get_json, place_as_a_careful_bot, tally_all

Hook = Callable[[dict], Awaitable[None]]  # called with each of the other traders' swaps
POOLS = ("raydium-sol-usdc", "meteora-sol-usdc")


async def _price(session: aiohttp.ClientSession, http: str) -> Decimal:
    quote = await _get_json(session, f"{http}/quote?tokenIn=SOL&tokenOut=USDC&amountIn=5", {})
    return Decimal(quote["outAmount"]) / 5


async def run_limit_load(http: str, ws: str, case: str, orders: int = 120, cancel_share: float = 0.3,
                         gtd_share: float = 0.3, on_swap: Hook | None = None, market_s: float = 12.0,
                         settle_timeout_s: float = 90) -> Report:
    report = Report(case)
    started = time.monotonic()
    rng = random.Random(case)
    followers = [Subscriber(ws, seed=n) for n in range(6)]
    accepted: dict[str, dict] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        readers = [asyncio.create_task(f.run(session)) for f in followers]
        await asyncio.sleep(0.3)
        price = await _price(session, http)

        async def place(n: int) -> None:
            selling = n % 2 == 0
            # Within 0.4 % of the price now: the swaps below cross most of them, back and forth.
            limit = (price * Decimal(str(1 + rng.uniform(-0.004, 0.004)))).quantize(Decimal("0.000001"))
            body: dict = {"type": "limit", "tokenIn": "SOL" if selling else "USDC",
                          "tokenOut": "USDC" if selling else "SOL", "amountIn": "5" if selling else "750",
                          "limitPrice": str(limit)}
            roll = rng.random()
            if roll < gtd_share:
                expires_at = datetime.now(UTC) + timedelta(seconds=rng.uniform(2, 8))
                body.update(timeInForce="GTD", expiresAt=expires_at.isoformat())
            elif roll < gtd_share + 0.1:
                body["timeInForce"] = rng.choice(["IOC", "FOK"])
            order_id = await place_as_a_careful_bot(session, http, body, f"{case}-{n}", report)
            if order_id is None:
                return
            accepted[order_id] = body
            followers[n % len(followers)].follow(order_id)
            if rng.random() < cancel_share:  # the trader changes their mind while the price moves
                await asyncio.sleep(rng.uniform(0, 5))
                await _cancel(session, http, order_id)

        async def other_traders() -> None:
            deadline = time.monotonic() + market_s
            up = True
            while time.monotonic() < deadline:
                for pool_id in POOLS:
                    body = {"poolId": pool_id, "tokenIn": "USDC" if up else "SOL",
                            "amountIn": str(rng.randint(40_000, 90_000)) if up else str(rng.randint(250, 600))}
                    async with session.post(f"{http}/dex/swaps", json=body, headers=_auth()) as response:
                        if response.status == 201 and on_swap is not None:
                            await on_swap(await response.json())
                now = await _price(session, http)
                up = now < price * Decimal("1.006") if up else now < price * Decimal("0.994")
                await asyncio.sleep(0.2)

        market = asyncio.create_task(other_traders())
        placements = []
        for n in range(orders):
            placements.append(asyncio.create_task(place(n)))
            await asyncio.sleep(rng.expovariate(30))
        await asyncio.gather(*placements, market)
        # What still rests is cancelled, as a trader closing the day; an order being swapped right then (409) may
        # rest again if its swap misses the limit, so unfinished orders are cancelled again until none is left.
        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline and not all(f.finished() for f in followers):
            unfinished = [oid for f in followers for oid in f.frames if oid not in f.done]
            await asyncio.gather(*(_cancel(session, http, oid) for oid in unfinished))
            await asyncio.sleep(2)
        await tally_all(session, http, report, list(accepted), followers, readers,
                        lambda order_id, view, swap: _at_or_above_limit(view, swap))
    report.seconds = time.monotonic() - started
    return report


def _at_or_above_limit(view: dict, swap: dict) -> bool:
    """The swap's output reaches the order's least output (an IOC's share of it, for what it filled)."""
    amount_in, least = Decimal(view["amountIn"]), Decimal(view["minAmountOut"])
    decimals = {"SOL": 9, "USDC": 6, "USDT": 6, "JUP": 6}
    filled = Decimal(swap["amountIn"]).scaleb(-decimals[swap["tokenIn"]])
    out = Decimal(swap["amountOut"]).scaleb(-decimals[swap["tokenOut"]])
    return out >= least * filled / amount_in


async def _cancel(session: aiohttp.ClientSession, http: str, order_id: str) -> None:
    for _ in range(20):
        try:
            async with session.delete(f"{http}/orders/{order_id}", headers=_auth()) as response:
                if response.status in (200, 404, 409):
                    return
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(0.3)
