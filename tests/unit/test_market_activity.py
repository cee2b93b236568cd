"""The simulated other traders: trades of bounded size that pull a moved price back, and prices drifting both ways
on the real pool math."""

import random
from decimal import Decimal

from chalicelib.api import views
from chalicelib.domain.markets import genesis_pools
from infra.local.market_activity import LEAST_SHARE, MOST_SHARE, next_trade


def pool_as_api_shows_it(pool_id="raydium-sol-usdc", price="150", base="50000"):
    return {"id": pool_id, "base": "SOL", "quote": "USDC", "price": price,
            "reserves": {"base": base, "quote": str(Decimal(base) * Decimal(price))}}


def test_a_risen_price_is_sold_into_more_often_and_a_fallen_one_bought():
    rng = random.Random(7)
    risen = [next_trade(pool_as_api_shows_it(price="153"), Decimal("150"), rng) for _ in range(400)]
    fallen = [next_trade(pool_as_api_shows_it(price="147"), Decimal("150"), rng) for _ in range(400)]
    assert sum(t.token_in == "SOL" for t in risen) > 300  # 2 % up: 90 % of trades sell SOL
    assert sum(t.token_in == "USDC" for t in fallen) > 300


def test_trade_sizes_are_a_small_share_of_the_pool():
    rng = random.Random(3)
    for _ in range(200):
        trade = next_trade(pool_as_api_shows_it(), Decimal("150"), rng)
        base_size = Decimal(trade.amount_in) / (150 if trade.token_in == "USDC" else 1)
        assert Decimal(str(LEAST_SHARE)) * 50000 * Decimal("0.99") <= base_size <= Decimal(str(MOST_SHARE)) * 50000


def test_prices_drift_both_ways_and_stay_near_where_they_started():
    rng = random.Random(11)
    pool = next(p for p in genesis_pools() if p.id == "raydium-sol-usdc")
    start, prices = Decimal("150"), []
    for _ in range(2000):
        shown = views.pool_info(pool).model_dump(mode="json")
        trade = next_trade(shown, start, rng)
        token = "SOL" if trade.token_in == "SOL" else "USDC"
        units = int(Decimal(trade.amount_in) * (10**9 if token == "SOL" else 10**6))
        pool = pool.swap(token, units, 0).pool_after
        prices.append(Decimal(views.pool_info(pool).model_dump(mode="json")["price"]))
    assert min(prices) < start < max(prices)  # both ways
    assert all(abs(p / start - 1) < Decimal("0.05") for p in prices)  # pulled back, never running away
