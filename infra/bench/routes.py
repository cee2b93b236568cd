"""``make bench ARGS="--scenario routes"``: the router's search on the seeded pools, in process (no cloud needed).

For every pair within two hops and a range of sizes it prints what the best route gains over the best single pool,
in basis points, and how the amount is spread; then the CPU time of one search over random orders (p50, p99, max).
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal
from typing import Any

from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.route_search import candidate_routes, find_route
from chalicelib.domain.tokens import TOKENS

PAIRS = (("SOL", "USDC"), ("USDC", "SOL"), ("SOL", "USDT"), ("USDT", "SOL"), ("JUP", "USDC"), ("USDC", "JUP"),
         ("JUP", "SOL"), ("SOL", "JUP"), ("USDC", "USDT"), ("USDT", "USDC"))
SIZES = {"SOL": (10, 100, 1_000, 5_000, 10_000), "USDC": (1_500, 15_000, 150_000, 750_000, 1_500_000),
         "USDT": (1_500, 15_000, 150_000, 750_000, 1_500_000), "JUP": (10_000, 100_000, 1_000_000, 2_000_000)}


def run_routes(samples: int = 400, seed: int = 7) -> dict[str, Any]:
    pools = genesis_pools()
    gains = []
    for token_in, token_out in PAIRS:
        for size in SIZES[token_in]:
            plan = find_route(pools, token_in, token_out, size * 10 ** TOKENS[token_in].decimals, 0)
            if plan is None:
                continue
            spread = ", ".join(f"{route.tokens[1] + ' ' if len(route.pools) > 1 else ''}"
                               f"{'+'.join(p.venue for p in route.pools)} {plan.percent(route)} %"
                               for route, _ in plan.shares)
            row = {"pair": f"{token_in}→{token_out}", "size": size,
                   "gain_bps": None if plan.gain_bps is None else str(plan.gain_bps), "route": spread}
            if plan.gain_bps is None:  # no pool trades the pair: what the plan gains over its best single route
                amount = size * 10 ** TOKENS[token_in].decimals
                best_route = max(r.output(amount, 0) for r in candidate_routes(pools, token_in, token_out))
                row["gain_over_best_route_bps"] = str(
                    (Decimal(plan.amount_out - best_route) * 10_000 / best_route).quantize(Decimal("0.01")))
            gains.append(row)
    rng = random.Random(seed)
    cpu_ms = []
    for _ in range(samples):
        token_in, token_out = rng.choice(PAIRS)
        amount = rng.uniform(1, max(SIZES[token_in]))
        started = time.process_time()
        find_route(pools, token_in, token_out, int(Decimal(amount) * 10 ** TOKENS[token_in].decimals), 0)
        cpu_ms.append((time.process_time() - started) * 1000)
    cpu_ms.sort()
    return {"scenario": "routes", "gains": gains,
            "cpu_ms": {"orders": samples, "p50": round(statistics.median(cpu_ms), 2),
                       "p99": round(cpu_ms[int(len(cpu_ms) * 0.99)], 2), "max": round(cpu_ms[-1], 2)}}


def summary(result: dict[str, Any]) -> str:
    lines = [f"{'pair':<10} {'size':>10} {'gain bp':>8}  route   (gain in brackets: a pair no pool trades, over its "
             "best single route)"]
    for row in result["gains"]:
        gain = row["gain_bps"] if row["gain_bps"] is not None else f"({row['gain_over_best_route_bps']})"
        lines.append(f"{row['pair']:<10} {row['size']:>10,} {gain:>8}  {row['route']}")
    cpu = result["cpu_ms"]
    lines.append(f"search CPU           p50 {cpu['p50']} ms, p99 {cpu['p99']} ms, max {cpu['max']} ms over "
                 f"{cpu['orders']} random orders")
    return "\n".join(lines)
