"""Limit orders' rules: terms from a price or a least output, rounding in the trader's favour, the IOC fill, and the
price bound that keeps a trigger from reading orders that cannot fill."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.limit_orders import (
    MAX_REST,
    InvalidTerms,
    Side,
    TimeInForce,
    best_price_bound,
    largest_fill,
    limit_terms,
    min_out_for_price,
    price_for_min_out,
    required_out,
    shortfall_bps,
)
from chalicelib.domain.markets import genesis_pools
from chalicelib.domain.routing import quote_pool
from chalicelib.domain.tokens import TOKENS

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SOL, USDC = TOKENS["SOL"], TOKENS["USDC"]


def test_selling_10_sol_at_152_needs_at_least_1520_usdc():
    terms = limit_terms("SOL", "USDC", 10 * 10**9, TimeInForce.GTC, NOW, limit_price=Decimal("152"))
    assert terms.side is Side.SELL and terms.min_amount_out == 1520 * 10**6
    assert terms.expires_at == NOW + MAX_REST and terms.trigger_key == Decimal("152")


def test_buying_sol_with_1520_usdc_at_152_needs_at_least_10_sol():
    terms = limit_terms("USDC", "SOL", 1520 * 10**6, TimeInForce.GTC, NOW, limit_price=Decimal("152"))
    assert terms.side is Side.BUY and terms.min_amount_out == 10 * 10**9
    assert terms.trigger_key == Decimal("-152")  # the highest bid sorts first


def test_a_least_output_gives_the_price_and_is_kept_exactly():
    terms = limit_terms("SOL", "USDC", 3 * 10**9, TimeInForce.FOK, NOW, min_amount_out=Decimal("455.000001"))
    assert terms.min_amount_out == 455_000_001 and terms.expires_at is None
    assert terms.limit_price == Decimal("151.666667")  # a seller's price rounded up: never below what was asked


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**13), st.integers(min_value=1, max_value=10**9))
def test_the_least_output_never_lets_a_seller_get_less_or_a_buyer_pay_more_than_the_price(amount, price_micros):
    price = Decimal(price_micros).scaleb(-6)
    sell = min_out_for_price(SOL, USDC, amount, price)  # USDC units for `amount` lamports
    assert Decimal(sell) >= Decimal(amount) * price / 1000 and Decimal(sell - 1) < Decimal(amount) * price / 1000
    buy = min_out_for_price(USDC, SOL, amount, price)  # lamports for `amount` USDC units
    assert Decimal(buy) * price >= Decimal(amount) * 1000 and Decimal(buy - 1) * price < Decimal(amount) * 1000


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**13), st.integers(min_value=1, max_value=10**13))
def test_a_derived_price_is_never_worse_for_the_trader_than_the_least_output(amount, least):
    sell_price = price_for_min_out(SOL, USDC, amount, least)
    assert Decimal(amount) * sell_price / 1000 >= Decimal(least)  # selling at it yields at least the least output
    buy_price = price_for_min_out(USDC, SOL, amount, least)
    assert Decimal(least) * buy_price <= Decimal(amount) * 1000  # buying at it pays at most what is offered


@pytest.mark.parametrize("options, field", [
    ({}, "limitPrice"),
    ({"limit_price": Decimal("1"), "min_amount_out": Decimal("1")}, "limitPrice"),
    ({"limit_price": Decimal("0")}, "limitPrice"),
    ({"limit_price": Decimal("-1")}, "limitPrice"),
    ({"limit_price": Decimal("150.0000001")}, "limitPrice"),  # USDC has 6 decimals
    ({"min_amount_out": Decimal("0.0000001")}, "minAmountOut"),
    ({"limit_price": Decimal("150"), "expires_at": NOW + timedelta(hours=1)}, "expiresAt"),  # GTC with an expiry
])
def test_bad_terms_name_the_field(options, field):
    with pytest.raises(InvalidTerms) as refused:
        limit_terms("SOL", "USDC", 10**9, TimeInForce.GTC, NOW, **options)
    assert refused.value.field == field


@pytest.mark.parametrize("expires_at", [None, NOW, NOW + timedelta(milliseconds=500), NOW + MAX_REST + timedelta(1),
                                        datetime(2026, 11, 29, 13, 0)])
def test_gtd_needs_an_expiry_with_a_timezone_between_1_s_and_30_days_ahead(expires_at):
    with pytest.raises(InvalidTerms) as refused:
        limit_terms("SOL", "USDC", 10**9, TimeInForce.GTD, NOW, limit_price=Decimal("150"), expires_at=expires_at)
    assert refused.value.field == "expiresAt"


def test_gtd_keeps_its_expiry_and_ioc_fok_have_none():
    later = NOW + timedelta(hours=1)
    assert limit_terms("SOL", "USDC", 10**9, TimeInForce.GTD, NOW, limit_price=Decimal("150"),
                       expires_at=later).expires_at == later
    for tif in (TimeInForce.IOC, TimeInForce.FOK):
        assert limit_terms("SOL", "USDC", 10**9, tif, NOW, limit_price=Decimal("150")).expires_at is None
        assert not tif.rests


def test_a_partial_fills_share_of_the_least_output_is_rounded_up():
    terms = limit_terms("SOL", "USDC", 3, TimeInForce.IOC, NOW, min_amount_out=Decimal("0.000010"))
    assert [required_out(terms, 3, filled) for filled in (0, 1, 2, 3)] == [0, 4, 7, 10]


def test_the_shortfall_is_in_basis_points_of_the_requirement():
    assert shortfall_bps(9_900, 10_000) == Decimal("100.00") and shortfall_bps(10_001, 10_000) == 0


def test_an_ioc_fills_the_most_the_pool_gives_at_the_limit():
    pool = next(p for p in genesis_pools() if p.id == "raydium-sol-usdc")
    amount = 2_000 * 10**9  # 2,000 SOL into 50,000: the average price falls well below the marginal 150
    terms = limit_terms("SOL", "USDC", amount, TimeInForce.IOC, NOW, limit_price=Decimal("146"))

    def quote(size):
        return quote_pool(pool, "SOL", "USDC", size, 0).amount_out if size else 0

    filled = largest_fill(amount, lambda x: required_out(terms, amount, x), quote)
    assert 0 < filled < amount
    assert quote(filled) >= required_out(terms, amount, filled)
    assert quote(filled + 1) < required_out(terms, amount, filled + 1)  # one unit more misses the limit


def test_no_order_past_the_bound_could_fill_any_size():
    pools = [p for p in genesis_pools() if (p.base, p.quote) == ("SOL", "USDC")]
    bid, ask = best_price_bound(pools, Side.SELL), best_price_bound(pools, Side.BUY)
    assert bid is not None and ask is not None and bid < 150 < ask
    for pool in pools:  # the smallest sell anywhere gets at most the bid per SOL; the smallest buy pays at least ask
        sold = quote_pool(pool, "SOL", "USDC", 10**6, 0).amount_out  # 0.001 SOL
        assert Decimal(sold) / 1000 <= bid
        bought = quote_pool(pool, "USDC", "SOL", 10**6, 0).amount_out  # 1 USDC
        assert Decimal(10**9) / bought >= ask
    assert best_price_bound([], Side.SELL) is None
