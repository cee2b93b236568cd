from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.markets import genesis_pools, meteora_pool, raydium_pool
from chalicelib.domain.pools import ConstantProductPool, DlmmPool, InsufficientLiquidity, UnsupportedToken

amounts = st.integers(min_value=1_000, max_value=10**13)


def test_raydium_swap_follows_the_published_formula():
    pool = ConstantProductPool("p", "SOL", "USDC", reserve_base=1_000_000, reserve_quote=2_000_000)
    outcome = pool.swap("SOL", 10_000)
    fee = -(-10_000 * 25 // 10_000)  # ceil(dx * 25 / 10000)
    assert outcome.fee == fee == 25
    assert outcome.amount_out == 2_000_000 * (10_000 - fee) // (1_000_000 + 10_000 - fee)
    # the fee stays in the pool: the whole input is added to the reserve
    assert outcome.pool_after.reserve_base == 1_010_000
    assert outcome.pool_after.reserve_quote == 2_000_000 - outcome.amount_out


@given(amount=amounts, direction=st.sampled_from(["SOL", "USDC"]))
def test_raydium_product_never_falls_and_output_stays_below_the_reserve(amount, direction):
    pool = raydium_pool("SOL", "USDC", "50000", "150")
    try:
        outcome = pool.swap(direction, amount)
    except InsufficientLiquidity:
        return
    after = outcome.pool_after
    assert after.reserve_base * after.reserve_quote >= pool.reserve_base * pool.reserve_quote
    assert 0 < outcome.amount_out < (pool.reserve_quote if direction == "SOL" else pool.reserve_base)


@given(small=st.integers(min_value=10**6, max_value=10**13), extra=st.integers(min_value=10**6, max_value=10**13))
def test_raydium_bigger_orders_get_worse_prices(small, extra):
    pool = raydium_pool("SOL", "USDC", "50000", "150")
    a, b = pool.swap("SOL", small), pool.swap("SOL", small + extra)
    assert b.amount_out >= a.amount_out
    # Price per unit falls with size. Integer rounding (the fee's ceiling, the output's floor) can cost the
    # smaller order up to two output units against the exact curve, so that is the tolerance.
    assert Decimal(b.amount_out) / (small + extra) <= Decimal(a.amount_out + 2) / small


def test_raydium_rejects_a_token_it_does_not_list():
    with pytest.raises(UnsupportedToken):
        raydium_pool("SOL", "USDC", "100", "150").swap("JUP", 10)


def test_dlmm_fills_inside_the_active_bin_at_its_price_minus_the_base_fee():
    pool = meteora_pool("SOL", "USDC", "250", "150", bin_step=10, bins_each_side=10)
    outcome = pool.swap("SOL", 10**9)  # 1 SOL, far less than the bin holds
    base_fee_rate = Decimal(pool.base_fee_rate()) / 10**9
    expected = int((10**9 - outcome.fee) * pool.bin_price(pool.active_id))
    assert base_fee_rate == Decimal("0.001")
    assert outcome.fee == 10**6  # 0.1% of 1 SOL
    assert outcome.amount_out == expected
    assert outcome.pool_after.active_id == pool.active_id


def test_dlmm_walks_bins_down_when_selling_base_and_charges_a_growing_variable_fee():
    pool = meteora_pool("SOL", "USDC", "10", "150", bin_step=10, bins_each_side=50)
    outcome = pool.swap("SOL", 200 * 10**9, now=1_000)
    after = outcome.pool_after
    assert after.active_id < pool.active_id - 10
    assert after.volatility_accumulator > 0
    assert pool.total_fee_rate(after.volatility_accumulator) > pool.base_fee_rate()
    # bins passed over hold no quote token any more
    for bin_id in range(after.active_id + 1, pool.active_id + 1):
        assert after.bins[bin_id][1] == 0
    assert outcome.price_impact_pct > 0


def test_dlmm_buying_base_moves_the_active_bin_up():
    pool = meteora_pool("SOL", "USDC", "10", "150", bin_step=10, bins_each_side=50)
    outcome = pool.swap("USDC", 10_000 * 10**6)
    assert outcome.pool_after.active_id > pool.active_id
    assert 60 * 10**9 < outcome.amount_out < 70 * 10**9


def test_dlmm_variable_fee_is_capped_at_ten_percent():
    pool = meteora_pool("SOL", "USDC", "10", "150", bin_step=100, bins_each_side=5)
    assert pool.total_fee_rate(10**12) == 100_000_000


def test_dlmm_volatility_decays_with_time():
    pool = meteora_pool("SOL", "USDC", "10", "150", bin_step=10, bins_each_side=50)
    moved = pool.swap("SOL", 100 * 10**9, now=1_000).pool_after
    soon = moved._references_at(1_010)
    later = moved._references_at(1_100)
    much_later = moved._references_at(5_000)
    assert soon == (moved.volatility_reference, moved.index_reference)  # inside the filter period
    assert later[0] == moved.volatility_accumulator * 5_000 // 10_000 and later[1] == moved.active_id
    assert much_later[0] == 0


def test_dlmm_cannot_fill_beyond_its_liquidity():
    pool = meteora_pool("SOL", "USDC", "1", "150", bin_step=10, bins_each_side=3)
    with pytest.raises(InsufficientLiquidity):
        pool.swap("SOL", 100 * 10**9)


@settings(max_examples=60)
@given(amount=st.integers(min_value=10**6, max_value=5 * 10**12), direction=st.sampled_from(["SOL", "USDC"]))
def test_dlmm_conserves_tokens(amount, direction):
    pool = meteora_pool("SOL", "USDC", "250", "150", bin_step=10, bins_each_side=150)
    try:
        outcome = pool.swap(direction, amount, now=0)
    except InsufficientLiquidity:
        return
    before = [sum(b[i] for b in pool.bins.values()) for i in (0, 1)]
    after = [sum(b[i] for b in outcome.pool_after.bins.values()) for i in (0, 1)]
    sold, bought = (0, 1) if direction == "SOL" else (1, 0)
    assert after[bought] == before[bought] - outcome.amount_out
    # what the trader paid, less the fee, is now in the bins; nothing is created or lost
    assert after[sold] == before[sold] + amount - outcome.fee
    assert all(x >= 0 and y >= 0 for x, y in outcome.pool_after.bins.values())


@pytest.mark.parametrize("pool", genesis_pools(), ids=lambda p: p.id)
def test_pool_state_round_trips(pool):
    state = pool.to_state()
    rebuilt = type(pool).from_state(pool.id, pool.base, pool.quote, state)
    assert rebuilt == pool
    assert rebuilt.swap(pool.base, 10**6).amount_out == pool.swap(pool.base, 10**6).amount_out


def test_genesis_pools_list_three_pairs_on_both_venues():
    pools = genesis_pools()
    assert {(p.base, p.quote) for p in pools} == {("SOL", "USDC"), ("SOL", "USDT"), ("JUP", "USDC")}
    assert {p.venue for p in pools} == {"raydium", "meteora"}
    assert all(isinstance(p, (ConstantProductPool, DlmmPool)) for p in pools)


def test_pools_stored_in_the_earlier_bin_format_still_load():
    pool = next(p for p in genesis_pools() if isinstance(p, DlmmPool))
    state = {**pool.to_state(), "bins": {str(k): [b, q] for k, (b, q) in pool.bins.items()}}
    assert DlmmPool.from_state(pool.id, pool.base, pool.quote, state) == pool
