"""The markets the mock venues list, and the liquidity each pool starts with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .pools import FEE_PRECISION, ConstantProductPool, DlmmPool, Pool, dlmm_bin_for_price
from .tokens import TOKENS

PAIRS: tuple[tuple[str, str], ...] = (("SOL", "USDC"), ("SOL", "USDT"), ("JUP", "USDC"))  # the genesis pairs


class PairRegistry:
    """The (base, quote) pairs some pool trades, as this process knows them: a pair it has not seen is asked of
    the loader the wiring installs (pools are launched, never removed, so what a process learnt stays true)."""

    def __init__(self, genesis: tuple[tuple[str, str], ...]):
        self._genesis = genesis
        self._pairs: dict[frozenset[str], tuple[str, str]] = {}
        self._loader: Callable[[], list[tuple[str, str]]] = lambda: []
        self.forget_learnt()

    def learn_with(self, loader: Callable[[], list[tuple[str, str]]]) -> None:
        """``loader()``: every pair the venues list now."""
        self._loader = loader

    def forget_learnt(self) -> None:
        self._pairs = {frozenset(pair): pair for pair in self._genesis}

    def pair_of(self, token_in: str, token_out: str) -> tuple[str, str] | None:
        key = frozenset((token_in, token_out))
        found = self._pairs.get(key)
        if found is None and len(key) == 2:
            for pair in self._loader():
                self._pairs.setdefault(frozenset(pair), pair)
            found = self._pairs.get(key)
        return found

    def through(self, token_in: str, token_out: str) -> str | None:
        """A token that pairs with both (a route's middle hop), when no listed pair joins them directly."""
        for attempt in range(2):
            partners = {t for pair in self._pairs for t in pair if token_in in pair} - {token_in}
            for middle in sorted(partners - {token_out}):
                if frozenset((middle, token_out)) in self._pairs:
                    return middle
            if attempt == 0:
                for pair in self._loader():  # perhaps a pair this process has not seen yet
                    self._pairs.setdefault(frozenset(pair), pair)
        return None


LISTED_PAIRS = PairRegistry(PAIRS)


def pair_of(token_in: str, token_out: str) -> tuple[str, str] | None:
    """The listed (base, quote) pair that trades these two tokens, in either direction."""
    return LISTED_PAIRS.pair_of(token_in, token_out)


def routable(token_in: str, token_out: str) -> bool:
    """Whether a route of at most two hops may join the tokens: a listed pair, or a token paired with both."""
    return pair_of(token_in, token_out) is not None or LISTED_PAIRS.through(token_in, token_out) is not None


def price_of(pool: Pool) -> Decimal:
    """Units of quote per unit of base, in human units, to the quote token's precision."""
    base, quote = TOKENS[pool.base], TOKENS[pool.quote]
    return (pool.spot_price(pool.base) * Decimal(10) ** (base.decimals - quote.decimals)).quantize(
        Decimal(1).scaleb(-quote.decimals))


def fee_bps_now(pool: Pool) -> Decimal:
    """The fee a swap pays now, in basis points: fixed on Raydium, grown by recent volatility on Meteora."""
    if isinstance(pool, DlmmPool):
        return Decimal(pool.total_fee_rate(pool.volatility_accumulator)) * 10_000 / FEE_PRECISION
    assert isinstance(pool, ConstantProductPool)
    return Decimal(pool.fee_bps)


def reserves_of(pool: Pool) -> tuple[int, int]:
    """The pool's base and quote, in base units (a DLMM pool's summed over its bins)."""
    if isinstance(pool, DlmmPool):
        return sum(b for b, _ in pool.bins.values()), sum(q for _, q in pool.bins.values())
    assert isinstance(pool, ConstantProductPool)
    return pool.reserve_base, pool.reserve_quote


@dataclass(frozen=True)
class PoolSnapshot:
    """A pool as its last change left it: the slot of the swap that made it (0: none yet) and when."""

    pool: Pool
    slot: int
    at: datetime

    def message(self) -> dict[str, Any]:
        """The WebSocket frame a market follower receives for this pool."""
        pool = self.pool
        base_units, quote_units = reserves_of(pool)
        return {"type": "pool.update", "poolId": pool.id, "venue": pool.venue, "base": pool.base,
                "quote": pool.quote, "price": str(price_of(pool)), "feeBps": str(fee_bps_now(pool)),
                "reserves": {"base": TOKENS[pool.base].format(base_units),
                             "quote": TOKENS[pool.quote].format(quote_units)},
                "slot": self.slot, "at": self.at.isoformat()}


def _units(symbol: str, amount: str | int) -> int:
    return TOKENS[symbol].to_units(Decimal(amount))


def _raw_price(base: str, quote: str, price: str) -> Decimal:
    return Decimal(price).scaleb(TOKENS[quote].decimals - TOKENS[base].decimals)


def raydium_pool(base: str, quote: str, base_reserve: str, price: str) -> ConstantProductPool:
    reserve_base = _units(base, base_reserve)
    reserve_quote = int(reserve_base * _raw_price(base, quote, price))
    return ConstantProductPool(f"raydium-{base}-{quote}".lower(), base, quote, reserve_base, reserve_quote)


def meteora_pool(base: str, quote: str, base_per_bin: str, price: str, bin_step: int, bins_each_side: int) -> DlmmPool:
    active = dlmm_bin_for_price(_raw_price(base, quote, price), bin_step)
    per_bin = _units(base, base_per_bin)
    pool = DlmmPool(f"meteora-{base}-{quote}".lower(), base, quote, bin_step, active, {}, index_reference=active)
    bins: dict[int, tuple[int, int]] = {}
    for bin_id in range(active - bins_each_side, active + bins_each_side + 1):
        quote_value = int(per_bin * pool.bin_price(bin_id))
        if bin_id < active:
            bins[bin_id] = (0, quote_value)
        elif bin_id > active:
            bins[bin_id] = (per_bin, 0)
        else:
            bins[bin_id] = (per_bin // 2, quote_value // 2)
    return DlmmPool(pool.id, base, quote, bin_step, active, bins, index_reference=active)


def genesis_pools() -> list[Pool]:
    return [
        raydium_pool("SOL", "USDC", "50000", "150"),
        meteora_pool("SOL", "USDC", "250", "149.9", bin_step=10, bins_each_side=150),
        raydium_pool("SOL", "USDT", "20000", "150.05"),
        meteora_pool("SOL", "USDT", "100", "150.1", bin_step=10, bins_each_side=150),
        raydium_pool("JUP", "USDC", "5000000", "0.85"),
        meteora_pool("JUP", "USDC", "20000", "0.851", bin_step=20, bins_each_side=100),
    ]


# Liquidity a launched pool spreads on each side of its opening price (a DLMM position spans at most 70 bins).
LAUNCH_BINS_EACH_SIDE = 34


def launched_raydium_pool(base: str, quote: str, base_units: int, quote_units: int, open_time: int) -> Pool:
    """A new Raydium CPMM pool, as ``initialize`` creates it: the deposits are its reserves, and their ratio its
    opening price."""
    return ConstantProductPool(f"raydium-{base}-{quote}".lower(), base, quote, base_units, quote_units,
                               open_time=open_time)


def launched_meteora_pool(base: str, quote: str, base_units: int, quote_units: int, bin_step: int,
                          open_time: int) -> Pool:
    """A new Meteora DLMM pool opening at the deposits' ratio: the base spread over the active bin and the bins
    above it, the quote over the active bin and the bins below it, in equal parts."""
    active = dlmm_bin_for_price(Decimal(quote_units) / Decimal(base_units), bin_step)
    shares = LAUNCH_BINS_EACH_SIDE + 1
    base_per_bin, quote_per_bin = base_units // shares, quote_units // shares
    bins = {active: (base_per_bin, quote_per_bin)}
    for offset in range(1, shares):
        bins[active + offset] = (base_per_bin, 0)
        bins[active - offset] = (0, quote_per_bin)
    return DlmmPool(f"meteora-{base}-{quote}".lower(), base, quote, bin_step, active, dict(sorted(bins.items())),
                    index_reference=active, open_time=open_time)
