"""Sniper orders under a fault: tokens launched with pools opening a few seconds ahead, snipers waiting on each
(most passing the launch's checks, some with a max price below it that expire open, some with a delay after the
open), and, with ``cancel_share``, cancels fired at random around the open. A launch's snipers swap one at a time,
each waiting for the one before it (its retries after venue failures included): they may wait 90 s. Measured as the
market orders' cases are, plus: no swap ever lands before its pool's open (plus the sniper's delay).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET
from tests.faults.harness import Report, Subscriber, place_as_a_careful_bot, tally_all
from tests.faults.limit_load import _cancel

Hook = Callable[[dict], Awaitable[None]]  # called with each launched pool


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token('launcher', LOCAL_JWT_SECRET, scope='dex:admin')}"}


async def _admin_post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    for _ in range(40):  # the fault may be settling: a launcher retries too
        try:
            async with session.post(url, json=body, headers=_admin()) as response:
                if response.status == 201:
                    return await response.json()
                if response.status not in (503, 502):
                    raise AssertionError(f"POST {url} answered {response.status}: {await response.text()}")
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"POST {url} never succeeded")


async def run_sniper_load(http: str, ws: str, case: str, orders: int = 100, launches: int = 4,
                          cancel_share: float = 0.0, on_launch: Hook | None = None, opens_in_s: float = 5.0,
                          settle_timeout_s: float = 150) -> Report:
    report = Report(case)
    started = time.monotonic()
    rng = random.Random(case)
    followers = [Subscriber(ws, seed=n) for n in range(4)]
    accepted: dict[str, dict] = {}
    opens_at: dict[str, datetime] = {}  # order id -> when its pool opens to it (the open plus its delay)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        readers = [asyncio.create_task(f.run(session)) for f in followers]
        await asyncio.sleep(0.3)

        async def launch(n: int) -> None:
            symbol = f"S{uuid.uuid4().hex[:6].upper()}{n}"
            await _admin_post(session, f"{http}/dex/tokens", {"symbol": symbol, "decimals": 6,
                                                              "mintAuthority": "revoked", "freezeAuthority": "revoked"})
            open_time = (datetime.now(UTC) + timedelta(seconds=opens_in_s + 3)).replace(microsecond=0)
            mine = []
            for k in range(orders // launches):
                body: dict = {"type": "sniper", "tokenIn": "USDC", "tokenOut": symbol, "amountIn": "10",
                              "expiresAt": (open_time + timedelta(seconds=90)).isoformat()}
                delay = 0
                roll = rng.random()
                if roll < 0.15:  # too cheap a ceiling: rests open, then expires
                    body.update(maxPrice="0.001", expiresAt=(open_time + timedelta(seconds=4)).isoformat())
                elif roll < 0.3:
                    delay = rng.randint(1, 2)
                    body["delaySeconds"] = delay
                order_id = await place_as_a_careful_bot(session, http, body, f"{case}-{n}-{k}", report)
                if order_id is None:
                    continue
                accepted[order_id] = body
                opens_at[order_id] = open_time + timedelta(seconds=delay)
                followers[len(accepted) % len(followers)].follow(order_id)
                mine.append(order_id)
            pool = await _admin_post(session, f"{http}/dex/pools", {
                "venue": rng.choice(["raydium", "meteora"]), "base": symbol, "quote": "USDC",
                "baseAmount": "1000000", "quoteAmount": "2000", "openTime": open_time.isoformat()})
            if on_launch is not None:
                await on_launch(pool)
            cancels = [asyncio.create_task(_cancel_near(session, http, order_id, open_time, rng))
                       for order_id in mine if rng.random() < cancel_share]
            await asyncio.gather(*cancels)

        await asyncio.gather(*(launch(n) for n in range(launches)))
        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline and not all(f.finished() for f in followers):
            await asyncio.sleep(1)
        await tally_all(session, http, report, list(accepted), followers, readers,
                        lambda order_id, view, swap: datetime.fromisoformat(swap["executedAt"]) >= opens_at[order_id])
    report.seconds = time.monotonic() - started
    return report


async def _cancel_near(session: aiohttp.ClientSession, http: str, order_id: str, open_time: datetime,
                       rng: random.Random) -> None:
    """A cancel racing the open: sent from half a second before it to half a second after."""
    moment = open_time + timedelta(seconds=rng.uniform(-0.5, 0.5))
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
    await _cancel(session, http, order_id)
