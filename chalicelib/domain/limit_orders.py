"""Limit orders: the terms a trader sets (a price or a least output, and how long the order may wait), and the rules
that decide when the venues can fill them.

Prices are written as traders write them: in the listed pair's quote token per base token (USDC per SOL for
SOL/USDC), whichever way the order trades. Selling the base means "at least ``limit_price`` each", buying it "at most
``limit_price`` each". Everything an order is checked against is an amount in base units: ``min_amount_out``, the
least the order accepts for its whole size, derived from the price rounded in the trader's favour. The condition is
the executable quote for the full size (after fees and price impact), never the pool's marginal price: the marginal
price touching the limit is not a fill at the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum

from .markets import pair_of
from .pools import Pool, least_fee
from .tokens import TOKENS, Token

MAX_REST = timedelta(days=30)  # a GTC order expires after this; a GTD order may not ask for longer
MIN_GTD_AHEAD = timedelta(seconds=1)


class TimeInForce(StrEnum):
    GTC = "GTC"  # rests until filled or cancelled (at most MAX_REST)
    GTD = "GTD"  # rests until expires_at
    IOC = "IOC"  # fills what it can now, at the limit; the rest is dropped
    FOK = "FOK"  # fills all of it now, or nothing

    @property
    def rests(self) -> bool:
        return self in (TimeInForce.GTC, TimeInForce.GTD)


class Side(StrEnum):
    BUY = "buy"  # of the pair's base, paying its quote
    SELL = "sell"  # of the pair's base, for its quote


class InvalidTerms(ValueError):
    """Terms no limit order may have; ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LimitTerms:
    side: Side
    limit_price: Decimal  # quote per base, human units: as given, or derived from min_amount_out
    min_amount_out: int  # base units of the order's token_out, for its whole size
    time_in_force: TimeInForce
    expires_at: datetime | None  # GTC and GTD; IOC and FOK never rest

    @property
    def trigger_key(self) -> Decimal:
        """The order's place in price-then-time priority, one index for both sides: the best price sorts first
        (the lowest a seller accepts, the highest a buyer pays)."""
        return self.limit_price if self.side is Side.SELL else -self.limit_price


def side_of(token_in: str, token_out: str) -> Side:
    pair = pair_of(token_in, token_out)
    if pair is None:
        raise InvalidTerms("tokenOut", f"{token_in}/{token_out} is not a listed pair")
    return Side.SELL if token_in == pair[0] else Side.BUY


def _units_scale(token_in: Token, token_out: Token) -> Decimal:
    return Decimal(10) ** (token_out.decimals - token_in.decimals)


def min_out_for_price(token_in: Token, token_out: Token, amount_in: int, limit_price: Decimal) -> int:
    """The least output (base units of token_out) the price allows for the whole amount, rounded up: a seller gets
    at least the price, a buyer pays at most it."""
    with localcontext() as ctx:
        ctx.prec = 60
        if side_of(token_in.symbol, token_out.symbol) is Side.SELL:
            exact = Decimal(amount_in) * limit_price * _units_scale(token_in, token_out)
        else:
            exact = Decimal(amount_in) * _units_scale(token_in, token_out) / limit_price
        return int(exact.to_integral_value(rounding=ROUND_CEILING))


def price_for_min_out(token_in: Token, token_out: Token, amount_in: int, min_amount_out: int) -> Decimal:
    """The price a least output amounts to, in quote per base, to the quote token's precision and in the trader's
    favour (a seller's price rounded up, a buyer's down)."""
    side = side_of(token_in.symbol, token_out.symbol)
    quote = token_out if side is Side.SELL else token_in
    with localcontext() as ctx:
        ctx.prec = 60
        if side is Side.SELL:
            exact = Decimal(min_amount_out) / _units_scale(token_in, token_out) / Decimal(amount_in)
            rounding = ROUND_CEILING
        else:
            exact = Decimal(amount_in) * _units_scale(token_in, token_out) / Decimal(min_amount_out)
            rounding = ROUND_FLOOR
        return exact.quantize(Decimal(1).scaleb(-quote.decimals), rounding=rounding).normalize()


def limit_terms(
    token_in: str, token_out: str, amount_in: int, time_in_force: TimeInForce, now: datetime, *,
    limit_price: Decimal | None = None, min_amount_out: Decimal | None = None, expires_at: datetime | None = None,
) -> LimitTerms:
    """A limit order's terms from what the trader gave: exactly one of a price and a least output (in token_out's
    own units), and an expiry only with GTD."""
    source, target = TOKENS[token_in], TOKENS[token_out]
    side = side_of(token_in, token_out)
    if (limit_price is None) == (min_amount_out is None):
        raise InvalidTerms("limitPrice", "give exactly one of limitPrice and minAmountOut")
    if limit_price is not None:
        quote = TOKENS[pair_of(token_in, token_out)[1]]  # type: ignore[index]  # side_of checked the pair
        if not limit_price.is_finite() or limit_price <= 0:
            raise InvalidTerms("limitPrice", "limitPrice must be a positive number")
        if not quote.fits_precision(limit_price):
            raise InvalidTerms("limitPrice", f"limitPrice is in {quote.symbol}, which has {quote.decimals} decimals")
        least = min_out_for_price(source, target, amount_in, limit_price)
        price = limit_price
    else:
        assert min_amount_out is not None
        if not min_amount_out.is_finite() or min_amount_out <= 0:
            raise InvalidTerms("minAmountOut", "minAmountOut must be a positive number")
        if not target.fits_precision(min_amount_out):
            raise InvalidTerms("minAmountOut", f"{target.symbol} has at most {target.decimals} decimals")
        least = target.to_units(min_amount_out)
        price = price_for_min_out(source, target, amount_in, least)
    if least <= 0:
        raise InvalidTerms("limitPrice", "the limit asks for nothing in return")
    return LimitTerms(side, price, least, time_in_force, _expiry(time_in_force, now, expires_at))


def _expiry(time_in_force: TimeInForce, now: datetime, expires_at: datetime | None) -> datetime | None:
    if time_in_force is TimeInForce.GTD:
        if expires_at is None:
            raise InvalidTerms("expiresAt", "a GTD order needs expiresAt")
        if expires_at.tzinfo is None:
            raise InvalidTerms("expiresAt", "expiresAt needs a timezone (e.g. 2026-12-01T12:00:00Z)")
        if expires_at < now + MIN_GTD_AHEAD:
            raise InvalidTerms("expiresAt", "expiresAt must be at least 1 s ahead")
        if expires_at > now + MAX_REST:
            raise InvalidTerms("expiresAt", "expiresAt may be at most 30 days ahead")
        return expires_at
    if expires_at is not None:
        raise InvalidTerms("expiresAt", f"expiresAt goes with GTD only, not {time_in_force}")
    return now + MAX_REST if time_in_force is TimeInForce.GTC else None


def required_out(terms: LimitTerms, amount_in: int, filled_in: int) -> int:
    """The least output for ``filled_in`` of the order's ``amount_in``: its share of min_amount_out, rounded up."""
    return -(-terms.min_amount_out * filled_in // amount_in)


def shortfall_bps(quoted_out: int, required: int) -> Decimal:
    """How far the best quote is below what the order requires, in basis points of the requirement (0 when met)."""
    if quoted_out >= required:
        return Decimal(0)
    return (Decimal(required - quoted_out) * 10_000 / Decimal(required)).quantize(Decimal("0.01"))


def largest_fill(amount_in: int, required_for: Callable[[int], int], quote: Callable[[int], int]) -> int:
    """The most of ``amount_in`` the venues fill at the limit now (an IOC's fill): the largest ``x`` whose quote
    reaches its share of the least output. A quote's average price only worsens as the size grows, so the sizes
    that qualify are those below one bound, found by bisection in ~log2(amount_in) quotes."""
    if quote(amount_in) >= required_for(amount_in):
        return amount_in
    low, high = 0, amount_in  # low qualifies (nothing filled), high does not
    while high - low > 1:
        middle = (low + high) // 2
        if quote(middle) >= required_for(middle):
            low = middle
        else:
            high = middle
    return low


def best_price_bound(pools: Iterable[Pool], side: Side) -> Decimal | None:
    """The best price, in quote per base (human units), that any unit of any size could get on these pools now: a
    seller's output per base never exceeds the best pool's marginal price after its least fee, and a buyer pays at
    least the cheapest marginal price with its fee. Orders past it cannot fill, so a trigger reads only the others."""
    bounds = []
    for pool in pools:
        base, quote = TOKENS[pool.base], TOKENS[pool.quote]
        fee = least_fee(pool)
        price = pool.spot_price(pool.base) * Decimal(10) ** (base.decimals - quote.decimals)
        bounds.append(price * (1 - fee) if side is Side.SELL else price / (1 - fee))
    if not bounds:
        return None
    return max(bounds) if side is Side.SELL else min(bounds)
