"""The router's search on the venues' real pool math: never worse than the best single pool, a split at the best
allocation of the 1 % grid (against brute force), hops where no pool trades the pair, and one pool when a split
would not pay."""

from __future__ import annotations

from decimal import Decimal
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.route_search import GRID_STEPS, candidate_routes, find_route
from chalicelib.domain.tokens import TOKENS

POOLS = genesis_pools()
PAIRS = [("SOL", "USDC"), ("USDC", "SOL"), ("SOL", "USDT"), ("JUP", "USDC"), ("USDC", "JUP"), ("JUP", "SOL"),
         ("SOL", "JUP"), ("USDC", "USDT"), ("USDT", "USDC")]
SIZES = {"SOL": (1, 20_000), "USDC": (1, 3_000_000), "USDT": (1, 3_000_000), "JUP": (1, 3_000_000)}


def best_single(token_in: str, token_out: str, amount: int) -> int:
    return max((r.output(amount, 0) for r in candidate_routes(POOLS, token_in, token_out) if len(r.pools) == 1),
               default=0)


def grid_optimum(token_in: str, token_out: str, amount: int) -> int:
    """Brute force: every route alone, and every split of two routes sharing no pool on the 1 % grid."""
    routes = candidate_routes(POOLS, token_in, token_out)
    best = max(r.output(amount, 0) for r in routes)
    for a, b in combinations(routes, 2):
        if a.pool_ids & b.pool_ids:
            continue
        for k in range(1, GRID_STEPS):
            share = amount * k // GRID_STEPS
            best = max(best, a.output(share, 0) + b.output(amount - share, 0))
    return best


amounts = st.sampled_from(PAIRS).flatmap(lambda pair: st.tuples(
    st.just(pair), st.integers(*SIZES[pair[0]]).map(lambda n, token=pair[0]: n * 10 ** TOKENS[token].decimals)))


@settings(max_examples=40, deadline=None)
@given(amounts)
def test_the_plan_is_never_worse_than_the_best_single_pool(case):
    (token_in, token_out), amount = case
    plan = find_route(POOLS, token_in, token_out, amount, 0)
    assert plan is not None
    assert plan.amount_out >= best_single(token_in, token_out, amount)
    assert sum(amount for _, amount in plan.shares) == amount
    assert plan.amount_out == sum(leg.amount_out for leg in plan.legs if leg.token_out == token_out)


@settings(max_examples=25, deadline=None)
@given(amounts)
def test_a_split_is_within_a_tenth_of_a_basis_point_of_the_best_allocation_on_the_grid(case):
    (token_in, token_out), amount = case
    plan = find_route(POOLS, token_in, token_out, amount, 0, min_gain_bps=Decimal(0))
    optimum = grid_optimum(token_in, token_out, amount)
    assert plan is not None and plan.amount_out * 100_000 >= optimum * 99_999  # 0.1 bp


def test_a_large_sell_splits_across_both_venues_and_gains_on_the_best_single_pool():
    plan = find_route(POOLS, "SOL", "USDC", 10_000 * 10**9, 0)
    assert {leg.pool.venue for leg in plan.legs} == {"raydium", "meteora"}
    assert plan.gain_bps > 10  # about 22 bp at 10,000 SOL on these pools
    assert sum(plan.percent(route) for route, _ in plan.shares) == 100


def test_a_small_order_keeps_one_pool():
    plan = find_route(POOLS, "SOL", "USDC", 10**9, 0)
    assert len(plan.legs) == 1 and plan.gain_bps == 0


def test_pairs_no_pool_trades_go_through_a_third_token():
    plan = find_route(POOLS, "JUP", "SOL", 1_000 * 10**6, 0)
    assert plan.gain_bps is None  # no single pool to compare with
    assert [(leg.token_in, leg.token_out) for leg in plan.legs][:2] == [("JUP", "USDC"), ("USDC", "SOL")]
    assert find_route(POOLS, "USDC", "USDT", 1_000 * 10**6, 0).legs[0].token_out == "SOL"
    assert len(find_route(POOLS, "JUP", "SOL", 10_000 * 10**6, 0).shares) == 1  # a split would gain < 1 bp
    assert find_route(POOLS, "JUP", "DOGE", 10**6, 0) is None
    assert find_route(POOLS, "JUP", "USDT", 10**6, 0) is None  # three hops away: out of reach


def test_a_transaction_runs_every_leg_on_a_copy_and_a_leg_that_cannot_fill_leaves_the_pools_as_they_were():
    from chalicelib.domain.pools import PoolError
    from chalicelib.domain.transactions import RouteOrder, run_transaction

    pools = {p.id: p for p in POOLS}
    hop = RouteOrder(1_000 * 10**6, (("raydium-jup-usdc", "JUP", "USDC"), ("meteora-sol-usdc", "USDC", "SOL")))
    outcome = run_transaction(pools, [hop], 0)
    assert set(outcome.pools_after) == {"raydium-jup-usdc", "meteora-sol-usdc"}
    assert outcome.legs[1].amount_in == outcome.legs[0].amount_out and outcome.amount_out == outcome.legs[1].amount_out
    assert pools["raydium-jup-usdc"] is POOLS[4]  # the caller's state is untouched
    wrong_token = RouteOrder(10**6, (("raydium-sol-usdc", "JUP", "USDC"),))
    with pytest.raises(PoolError):
        run_transaction(pools, [hop, wrong_token], 0)


def test_the_routes_benchmark_reports_gains_on_every_pair_and_the_search_cpu():
    from infra.bench.routes import run_routes, summary

    result = run_routes(samples=20)
    assert {row["pair"] for row in result["gains"]} >= {"SOL→USDC", "JUP→SOL", "USDC→USDT"}
    assert result["cpu_ms"]["orders"] == 20 and result["cpu_ms"]["p50"] > 0
    assert "search CPU" in summary(result)
