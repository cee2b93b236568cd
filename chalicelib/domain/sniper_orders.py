"""Sniper orders: buy a new token as its first pool opens, only if the launch passes the trader's checks.

A sniper rests (``open``) until a pool of its pair is open and, ``delay_seconds`` after the open, passes every check
it asks for: the token's mint and freeze authorities revoked, the pool's liquidity burned, at least
``min_liquidity`` of the order's input token in the pool, and a price for its whole size at most ``max_price``.
The price is the executable quote for the whole size (the average price after fees and impact), never the pool's
marginal price. A launch that fails a check is checked again on each of its pool's later events (an authority
revoked, the LP burned, more liquidity), until the order expires.

Being first in line means landing in the first moments after the open, not sending then: a swap takes the network's
latency to land. Before its open a pool cannot change (the venue refuses every swap on it, and an authority revoked
or a burn only ever makes a check pass), so a sniper is checked, triggered and built ``ahead`` of its open, and its
swap is sent the venue's least landing time before it: it lands at the open at the earliest, never before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any

from .limit_orders import InvalidTerms
from .markets import reserves_of
from .pools import Pool, PoolError, SwapOutcome
from .routing import min_out
from .tokens import Token, TokenListing

SNIPER_TOKENS_IN = ("USDC", "SOL")  # what snipers pay with: the quote tokens new pools list against
MAX_WAIT = timedelta(days=7)  # expiresAt at most this far ahead
MAX_DELAY_SECONDS = 300
PREPARE_AHEAD = timedelta(seconds=1)  # triggered this long before it may send: time to route, build and sign


@dataclass(frozen=True)
class Conditions:
    min_liquidity: Decimal | None = None  # the pool's reserve of the order's input token, in that token's units
    require_mint_revoked: bool = True
    require_freeze_revoked: bool = True
    require_lp_burned: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"minLiquidity": None if self.min_liquidity is None else f"{self.min_liquidity:f}",
                "requireMintRevoked": self.require_mint_revoked,
                "requireFreezeRevoked": self.require_freeze_revoked,
                "requireLpBurned": self.require_lp_burned}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Conditions:
        liquidity = stored.get("minLiquidity")
        return cls(None if liquidity is None else Decimal(liquidity), bool(stored["requireMintRevoked"]),
                   bool(stored["requireFreezeRevoked"]), bool(stored["requireLpBurned"]))


@dataclass(frozen=True)
class SniperTerms:
    expires_at: datetime
    max_price: Decimal | None = None  # token_in per token_out, human units, for the whole size
    conditions: Conditions = field(default_factory=Conditions)
    delay_seconds: int = 0  # waits this long after the pool's open


def sniper_terms(now: datetime, token_in: Token, expires_at: datetime, max_price: Decimal | None = None,
                 conditions: Conditions | None = None, delay_seconds: int = 0) -> SniperTerms:
    """The terms, checked; InvalidTerms naming the field at fault."""
    if expires_at.tzinfo is None:
        raise InvalidTerms("expiresAt", "expiresAt needs a timezone (e.g. 2026-12-01T12:00:00Z)")
    if expires_at <= now:
        raise InvalidTerms("expiresAt", "expiresAt must be ahead")
    if expires_at > now + MAX_WAIT:
        raise InvalidTerms("expiresAt", "expiresAt may be at most 7 days ahead")
    if max_price is not None and (not max_price.is_finite() or max_price <= 0):
        raise InvalidTerms("maxPrice", "maxPrice must be a positive number")
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise InvalidTerms("delaySeconds", f"delaySeconds must be 0 to {MAX_DELAY_SECONDS}")
    conditions = conditions or Conditions()
    if conditions.min_liquidity is not None:
        if not conditions.min_liquidity.is_finite() or conditions.min_liquidity <= 0:
            raise InvalidTerms("conditions.minLiquidity", "minLiquidity must be a positive number")
        if not token_in.fits_precision(conditions.min_liquidity):
            raise InvalidTerms("conditions.minLiquidity", f"{token_in.symbol} has at most {token_in.decimals} decimals")
    return SniperTerms(expires_at.astimezone(UTC), max_price, conditions, delay_seconds)


def least_out_for_max_price(token_in: Token, token_out: Token, amount_in: int, max_price: Decimal) -> int:
    """The least output (base units of token_out) for which the whole size costs at most ``max_price`` each."""
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(amount_in) * Decimal(10) ** (token_out.decimals - token_in.decimals) / max_price
        return int(exact.to_integral_value(rounding=ROUND_CEILING))


def sniper_min_out(terms: SniperTerms, token_in: Token, token_out: Token, amount_in: int, quoted_out: int,
                   slippage_bps: int) -> int:
    """The swap's minimum output: the stricter of the max-price bound and the slippage bound on the fresh quote."""
    least = min_out(quoted_out, slippage_bps)
    if terms.max_price is not None:
        least = max(least, least_out_for_max_price(token_in, token_out, amount_in, terms.max_price))
    return least


@dataclass(frozen=True)
class LaunchCheck:
    """What the launch offers a sniper now: the pool to buy on (``pool`` with its ``outcome``) when every check
    passes; else what it waits for, and when the earliest pool it waits on opens to it (its open plus the delay)."""

    pool: Pool | None = None
    outcome: SwapOutcome | None = None
    waiting_for: tuple[str, ...] = ()
    fire_at: datetime | None = None

    @property
    def fires(self) -> bool:
        return self.outcome is not None


def opens_to(terms: SniperTerms, pool: Pool) -> datetime:
    """When the sniper's swap may land on the pool: its open plus the sniper's delay."""
    return datetime.fromtimestamp(pool.open_time, UTC) + timedelta(seconds=terms.delay_seconds)


def check_launch(terms: SniperTerms, token_in: Token, token_out: Token, amount_in: int,
                 listing: TokenListing | None, pools: Iterable[Pool], now: datetime,
                 ahead: timedelta = timedelta(0)) -> LaunchCheck:
    """Checks every pool of the pair against the sniper's terms as they will stand at its open; the best pool that
    passes every check wins. A pool opening to it within ``ahead`` counts as open (its state cannot change before
    then); ``fire_at`` is when the earliest pool still waited for opens to it."""
    best: tuple[Pool, SwapOutcome] | None = None
    waiting: list[str] = []
    fire_at: datetime | None = None
    pools = [p for p in pools if token_in.symbol in (p.base, p.quote)]
    if not pools or not token_out.listed:
        return LaunchCheck(waiting_for=(f"no pool trades {token_in.symbol}/{token_out.symbol} yet",))
    for pool in pools:
        opens_to_it = opens_to(terms, pool)
        reasons, outcome = _unmet(terms, token_in, token_out, amount_in, listing, pool, max(now, opens_to_it))
        if now + ahead < opens_to_it:
            when = "to open" if terms.delay_seconds == 0 else f"to open, plus its {terms.delay_seconds} s delay,"
            reasons.insert(0, f"{pool.id} {when} at {opens_to_it.isoformat()}")
            fire_at = opens_to_it if fire_at is None else min(fire_at, opens_to_it)
        if not reasons and outcome is not None and (best is None or outcome.amount_out > best[1].amount_out):
            best = (pool, outcome)
        waiting.extend(reasons)
    if best is not None:
        return LaunchCheck(best[0], best[1])
    return LaunchCheck(waiting_for=tuple(dict.fromkeys(waiting)), fire_at=fire_at)


def _unmet(terms: SniperTerms, token_in: Token, token_out: Token, amount_in: int, listing: TokenListing | None,
           pool: Pool, at: datetime) -> tuple[list[str], SwapOutcome | None]:
    """What the pool still has to do at ``at`` to pass, each as a sentence, and the swap's outcome if it fills."""
    unmet: list[str] = []
    wants = terms.conditions
    if wants.require_mint_revoked and not (listing and listing.mint_authority_revoked):
        unmet.append(f"{token_out.symbol}'s mint authority to be revoked")
    if wants.require_freeze_revoked and not (listing and listing.freeze_authority_revoked):
        unmet.append(f"{token_out.symbol}'s freeze authority to be revoked")
    if wants.require_lp_burned and not pool.lp_burned:
        unmet.append(f"{pool.id}'s liquidity to be burned")
    if wants.min_liquidity is not None:
        held = reserves_of(pool)[0 if pool.base == token_in.symbol else 1]
        if held < token_in.to_units(wants.min_liquidity):
            unmet.append(f"{pool.id} to hold {wants.min_liquidity:f} {token_in.symbol} (it holds "
                         f"{token_in.format(held)})")
    try:
        outcome = pool.swap(token_in.symbol, amount_in, int(at.timestamp()))
    except PoolError as error:
        unmet.append(f"{pool.id} to fill its size ({error})")
        return unmet, None
    if terms.max_price is not None:
        least = least_out_for_max_price(token_in, token_out, amount_in, terms.max_price)
        if outcome.amount_out < least:
            paid = token_in.from_units(amount_in) / token_out.from_units(outcome.amount_out)
            unmet.append(f"{pool.id}'s price for its whole size to be at most {terms.max_price:f} {token_in.symbol} "
                         f"(it is {paid.quantize(Decimal('1e-9')).normalize():f})")
    return unmet, outcome
