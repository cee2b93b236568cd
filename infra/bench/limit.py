"""``make bench ARGS="--scenario limit"``: resting limit orders and the trigger under load.

It places ``--resting`` limit orders (default 10,000) over every pair through the REST API, half of them near the
market (1-2 % away, crossed by the activity below) and half far (5-8 %). It then measures, with the trigger's own code
against the cloud's database:

- the CPU time of a pool event that triggers nothing, with one order resting per pair and with them all resting
  (it must not grow with the number of resting orders: candidates are read through the price index);
- the CPU time of a pool event that triggers k orders;

and, through the public API, the trigger latency of the near orders as other traders' swaps (``POST /dex/swaps``)
cross them: from the swap that moved the price to the order's ``triggered`` event, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from decimal import Decimal
from typing import Any

import aiohttp

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET, Settings

PAIRS = (("SOL", "USDC", "1"), ("SOL", "USDT", "1"), ("JUP", "USDC", "100"))  # base, quote, base amount per order
MICRO = Decimal("0.000001")


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user, LOCAL_JWT_SECRET)}"}


async def _price(session: aiohttp.ClientSession, http: str, base: str, quote: str, amount: str) -> Decimal:
    for _ in range(30):  # an anonymous caller's rate limit applies to the bench as to anyone: it waits its turn
        async with session.get(f"{http}/quote", params={"tokenIn": base, "tokenOut": quote, "amountIn": amount}) as r:
            answer = await r.json()
            if r.status == 200:
                return Decimal(answer["outAmount"]) / Decimal(amount)
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
    raise RuntimeError(f"GET /quote kept refusing: {answer}")


def _order(base: str, quote: str, amount: str, price: Decimal, selling: bool, away: float) -> dict[str, Any]:
    """A limit order ``away`` (a fraction) from ``price``, on the side the price must move to fill it."""
    limit = (price * Decimal(str(1 + away if selling else 1 - away))).quantize(MICRO)
    if selling:
        return {"type": "limit", "tokenIn": base, "tokenOut": quote, "amountIn": amount, "limitPrice": str(limit)}
    return {"type": "limit", "tokenIn": quote, "tokenOut": base,
            "amountIn": str((Decimal(amount) * price).quantize(MICRO)), "limitPrice": str(limit)}


async def _place_all(http: str, bodies: list[dict[str, Any]], in_flight: int = 48) -> list[str]:
    ids: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for n, body in enumerate(bodies):
        queue.put_nowait((n, body))

    async def placer(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n, body = queue.get_nowait()
            for _ in range(20):
                async with session.post(f"{http}/orders", json=body, headers=_auth(f"resting-{n % 50}")) as r:
                    if r.status == 202:
                        ids.append((await r.json())["orderId"])
                        break
                await asyncio.sleep(0.2)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(placer(session) for _ in range(in_flight)))
    return ids


def _count_open(db: Any) -> int:
    with db.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM orders WHERE status = 'open'").fetchone()["n"]


def _wait_open(db: Any, expected: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while _count_open(db) < expected and time.monotonic() < deadline:
        time.sleep(0.5)


def _evaluation_cpu_ms(engine: Any, runs: int = 20) -> float:
    """The median CPU time of one pool event's evaluation that triggers nothing (every pair in turn)."""
    samples = []
    for n in range(runs):
        base, quote, _ = PAIRS[n % len(PAIRS)]
        started = time.process_time()
        report = engine.triggers.on_pools_changed([(base, quote)])
        samples.append((time.process_time() - started) * 1000)
        assert not report.triggered, "nothing should trigger while the prices stand still"
    return round(statistics.median(samples), 2)


def run_limit(args: argparse.Namespace, http: str, ws: str, env: dict[str, str]) -> dict[str, Any]:
    from chalicelib.bootstrap import build_engine

    # The trigger measured here queues what it triggers on the cloud's own SQS: botocore reads its wiring from the
    # environment.
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    engine = build_engine(Settings.from_env(env))
    db_url = Settings.from_env(env).database_url
    from chalicelib.adapters.postgres import connect_pool

    db = connect_pool(db_url, max_size=2)
    try:
        return asyncio.run(_scenario(args, http, ws, engine, db))
    finally:
        engine.close()
        db.close()


async def _scenario(args: argparse.Namespace, http: str, ws: str, engine: Any, db: Any) -> dict[str, Any]:
    rng_offsets = [(0.01 + 0.01 * (n % 100) / 100) for n in range(args.resting)]  # near: 1-2 %
    async with aiohttp.ClientSession() as session:
        prices = {(b, q): await _price(session, http, b, q, a) for b, q, a in PAIRS}
    # One far order per pair first: the cost of an event that reads the pools and finds no candidate.
    firsts = [_order(b, q, a, prices[(b, q)], True, 0.08) for b, q, a in PAIRS]
    await _place_all(http, firsts)
    await asyncio.to_thread(_wait_open, db, len(firsts))
    cpu_few = await asyncio.to_thread(_evaluation_cpu_ms, engine)

    print(f"placing {args.resting} resting limit orders over {len(PAIRS)} pairs...", flush=True)
    bodies = []
    for n in range(args.resting):
        base, quote, amount = PAIRS[n % len(PAIRS)]
        selling = (n // len(PAIRS)) % 2 == 0
        near = n % 2 == 0
        away = rng_offsets[n] if near else 0.05 + 0.03 * (n % 97) / 97
        bodies.append(_order(base, quote, amount, prices[(base, quote)], selling, away))
    started = time.monotonic()
    placed = await _place_all(http, bodies)
    await asyncio.to_thread(_wait_open, db, len(placed) + len(firsts))
    placing_s = time.monotonic() - started
    resting = await asyncio.to_thread(_count_open, db)
    cpu_many = await asyncio.to_thread(_evaluation_cpu_ms, engine)

    # An event that triggers k orders: a swap on SOL/USDC made here, whose event the cloud never sees, so that the
    # evaluation measured here is the one that triggers them.
    from chalicelib.domain.commands import TradeOnPool

    engine.market.trade("bench-mover", TradeOnPool("meteora-sol-usdc", "USDC", Decimal("400000")))
    engine.redelivery.ping()  # the SQS client is made now, not inside the measured evaluation
    started_cpu = time.process_time()
    k_report = engine.triggers.on_pools_changed([("SOL", "USDC")])
    cpu_k = round((time.process_time() - started_cpu) * 1000, 2)

    # Other traders cross the near orders of every pair, up then down, through the public API, until none of them
    # rests any more (the triggered orders' own fills push the price back, so the traders keep pushing).
    print("other traders move every pair up, then down, across the near orders...", flush=True)
    moved_at = time.time()
    swaps = 0
    async with aiohttp.ClientSession() as session:
        for direction in ("up", "down"):
            for base, quote, _ in PAIRS:
                pool = f"meteora-{base}-{quote}".lower()
                start = prices[(base, quote)]
                for _ in range(200):
                    if not await asyncio.to_thread(_near_resting, db, base, quote, start, direction == "up"):
                        break
                    token_in = quote if direction == "up" else base
                    size = (Decimal("40000") if token_in != base else Decimal("40000") / start).quantize(MICRO)
                    async with session.post(f"{http}/dex/swaps", headers=_auth("bench-trader"),
                                            json={"poolId": pool, "tokenIn": token_in, "amountIn": str(size)}):
                        swaps += 1
                    await asyncio.sleep(0.05)
    await asyncio.sleep(5)  # the last triggers, and their orders' swaps
    latencies = await asyncio.to_thread(_trigger_latencies_ms, db, moved_at)
    still_resting = await asyncio.to_thread(_count_open, db)
    market = await asyncio.to_thread(_market_orders_while_resting, args, http, ws)
    return {
        "crossed": {"swaps": swaps, "still_resting": still_resting},
        "market_orders_while_resting": market,
        "resting": resting, "placing_s": round(placing_s, 1),
        "event_cpu_ms_triggering_nothing": {"one_resting_per_pair": cpu_few, f"{resting}_resting": cpu_many},
        "event_cpu_ms_triggering_k": {"k": len(k_report.triggered), "cpu_ms": cpu_k},
        "trigger_latency_ms": {"orders": len(latencies),
                               "p50": round(statistics.median(latencies), 1) if latencies else None,
                               "p99": round(_p99(latencies), 1) if latencies else None},
    }


def _near_resting(db: Any, base: str, quote: str, start: Decimal, sells: bool) -> bool:
    """Whether a near order of this side (within 2 % of the starting price) still rests."""
    token_in, token_out = (base, quote) if sells else (quote, base)
    bound = start * Decimal("1.02") if sells else -(start * Decimal("0.98"))
    with db.connection() as conn:
        return conn.execute(
            """SELECT EXISTS (SELECT 1 FROM orders WHERE status = 'open' AND token_in = %s AND token_out = %s
                              AND trigger_key <= %s) AS found""",
            (token_in, token_out, bound),
        ).fetchone()["found"]


def _market_orders_while_resting(args: argparse.Namespace, http: str, ws: str) -> dict[str, Any]:
    """The usual market-order burst (``--orders``, 1,000 by default) while the far orders still rest."""
    import uuid

    from infra.local.processes import run_loop

    from .load import LoadPlan, run_load, stored_sequences, tokens_for
    from .report import figures

    orders = args.orders
    run_id = uuid.uuid4().hex[:8]
    tokens = tokens_for(orders, orders, run_id)
    started = time.monotonic()
    traces = run_loop(run_load(LoadPlan(http, ws, orders, orders, tokens, run_id, started + args.timeout)))
    owners = {t.order_id: tokens[t.index % len(tokens)] for t in traces if t.order_id}
    result = figures(traces, run_loop(stored_sequences(http, owners)))
    return {key: result[key] for key in ("orders", "accepted", "completed_per_s", "orders_lost",
                                         "subscribers_complete_fraction")}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _trigger_latencies_ms(db: Any, since_epoch: float) -> list[float]:
    """For each order a pool event triggered since ``since_epoch``: from the last swap of its pair before it to its
    ``triggered`` event."""
    with db.connection() as conn:
        rows = conn.execute(
            """SELECT EXTRACT(EPOCH FROM (e.at - (
                       SELECT max(s.executed_at) FROM dex.swaps s JOIN dex.pools p ON p.id = s.pool_id
                       WHERE p.base IN (o.token_in, o.token_out) AND p.quote IN (o.token_in, o.token_out)
                         AND s.executed_at <= e.at))) * 1000 AS ms
               FROM order_events e JOIN orders o ON o.id = e.order_id
               WHERE e.status = 'triggered' AND e.data->>'cause' = 'pool' AND e.at >= to_timestamp(%s)""",
            (since_epoch,),
        ).fetchall()
    return [float(r["ms"]) for r in rows if r["ms"] is not None]


def summary(result: dict[str, Any]) -> str:
    nothing = result["event_cpu_ms_triggering_nothing"]
    k = result["event_cpu_ms_triggering_k"]
    latency = result["trigger_latency_ms"]
    return "\n".join([
        f"resting limit orders {result['resting']} (placed and opened in {result['placing_s']} s)",
        "pool event, nothing  " + ", ".join(f"{name}: {ms} ms CPU" for name, ms in nothing.items()),
        f"pool event, k orders k = {k['k']}: {k['cpu_ms']} ms CPU",
        f"trigger latency      p50 {latency['p50']} ms, p99 {latency['p99']} ms over {latency['orders']} orders "
        "(swap to triggered)",
        f"crossing             {result['crossed']['swaps']} swaps by other traders; "
        f"{result['crossed']['still_resting']} orders still resting (the far ones)",
        f"market orders        {result['market_orders_while_resting']['completed_per_s']} completed/s while they "
        f"rest ({result['market_orders_while_resting']['accepted']} accepted, "
        f"{result['market_orders_while_resting']['orders_lost']} lost)",
    ])
