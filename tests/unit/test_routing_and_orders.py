from decimal import Decimal

import pytest

from chalicelib.domain.markets import genesis_pools, meteora_pool, pair_of, raydium_pool
from chalicelib.domain.orders import FINAL_STATUSES, Status, can_transition, transaction_signature
from chalicelib.domain.routing import NoRoute, choose_route, min_out, quote_pool
from chalicelib.domain.tokens import TOKENS


def quotes_for(pools, token_in, token_out, amount):
    return [quote_pool(p, token_in, token_out, amount, 0) for p in pools]


def test_router_picks_the_venue_with_the_most_output_and_says_why():
    cheap_meteora = meteora_pool("SOL", "USDC", "250", "149", bin_step=10, bins_each_side=20)
    raydium = raydium_pool("SOL", "USDC", "50000", "150")
    decision = choose_route(quotes_for([cheap_meteora, raydium], "SOL", "USDC", 10**9))
    assert decision.chosen.venue == "raydium"
    assert decision.chosen.amount_out == max(q.amount_out for q in decision.quotes)
    assert "raydium returns" in decision.reason and "more than meteora" in decision.reason
    assert len(decision.quotes) == 2


def test_router_prefers_deep_bins_for_large_orders_where_the_curve_slips():
    pools = genesis_pools()[:2]
    small = choose_route(quotes_for(pools, "SOL", "USDC", 10**9))
    assert small.chosen.venue == "meteora"
    thin_raydium = raydium_pool("SOL", "USDC", "500", "150")
    large = choose_route(quotes_for([thin_raydium, pools[1]], "SOL", "USDC", 100 * 10**9))
    assert large.chosen.venue == "meteora"
    assert next(q for q in large.quotes if q.venue == "raydium").price_impact_pct > 10


def test_router_uses_the_only_venue_able_to_fill():
    shallow = meteora_pool("SOL", "USDC", "1", "150", bin_step=10, bins_each_side=2)
    decision = choose_route(quotes_for([shallow, raydium_pool("SOL", "USDC", "50000", "150")], "SOL", "USDC", 10**11))
    assert decision.chosen.venue == "raydium"
    assert "only venue" in decision.reason and "meteora unavailable" in decision.reason


def test_router_without_a_usable_quote_has_no_route():
    with pytest.raises(NoRoute):
        choose_route(quotes_for([meteora_pool("SOL", "USDC", "1", "150", 10, 1)], "SOL", "USDC", 10**12))
    with pytest.raises(NoRoute):
        choose_route([])


def test_min_out_applies_the_slippage_in_basis_points():
    assert min_out(1_000_000, 50) == 995_000
    assert min_out(999, 100) == 989  # floor


def test_pairs_are_found_in_either_direction():
    assert pair_of("USDC", "SOL") == ("SOL", "USDC")
    assert pair_of("USDT", "USDC") is None


def test_statuses_only_move_forward():
    assert can_transition(Status.PENDING, Status.ROUTING)
    assert can_transition(Status.SUBMITTED, Status.CONFIRMED)
    assert not can_transition(Status.CONFIRMED, Status.FAILED)
    assert can_transition(Status.SUBMITTED, Status.SUBMITTED)  # a retried submission
    assert not can_transition(Status.ROUTING, Status.ROUTING)
    assert not can_transition(Status.SUBMITTED, Status.ROUTING)
    for final in FINAL_STATUSES:
        assert all(not can_transition(final, s) for s in Status)


def test_signature_is_fixed_by_the_order_and_looks_like_solana():
    a = transaction_signature("order-1")
    assert a == transaction_signature("order-1") != transaction_signature("order-2")
    assert 80 <= len(a) <= 90 and set(a) <= set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def test_tokens_convert_exactly_between_decimal_and_base_units():
    sol = TOKENS["SOL"]
    assert sol.to_units(Decimal("1.5")) == 1_500_000_000
    assert sol.format(1_500_000_000) == "1.5"
    assert sol.fits_precision(Decimal("0.000000001")) and not sol.fits_precision(Decimal("0.0000000001"))
    with pytest.raises(ValueError):
        sol.to_units(Decimal("0.0000000001"))
