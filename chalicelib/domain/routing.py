"""Choosing a venue: quote every pool for the pair and take the best output after fees and impact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .pools import Pool, PoolError, SwapOutcome


class NoRoute(Exception):
    """No venue can fill the order."""


@dataclass(frozen=True)
class VenueQuote:
    venue: str
    pool_id: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int
    price_impact_pct: Decimal
    error: str | None = None

    @classmethod
    def from_outcome(cls, pool: Pool, token_in: str, token_out: str, outcome: SwapOutcome) -> VenueQuote:
        return cls(
            pool.venue, pool.id, token_in, token_out, outcome.amount_in, outcome.amount_out, outcome.fee,
            outcome.price_impact_pct,
        )

    @classmethod
    def unavailable(cls, pool: Pool, token_in: str, token_out: str, amount_in: int, error: str) -> VenueQuote:
        return cls(pool.venue, pool.id, token_in, token_out, amount_in, 0, 0, Decimal(0), error)


@dataclass(frozen=True)
class RoutingDecision:
    chosen: VenueQuote
    quotes: tuple[VenueQuote, ...]
    reason: str


@dataclass(frozen=True)
class RecordedDecision:
    """A routing decision as stored with its order: the venue taken, why, and every quote it compared."""

    venue: str
    reason: str
    quotes: tuple[VenueQuote, ...]
    decided_at: datetime


def min_out(amount_out: int, slippage_bps: int) -> int:
    return amount_out * (10_000 - slippage_bps) // 10_000


def quote_pool(pool: Pool, token_in: str, token_out: str, amount_in: int, now: int) -> VenueQuote:
    try:
        outcome = pool.swap(token_in, amount_in, now)
    except PoolError as error:
        return VenueQuote.unavailable(pool, token_in, token_out, amount_in, str(error))
    return VenueQuote.from_outcome(pool, token_in, token_out, outcome)


def choose_route(quotes: list[VenueQuote]) -> RoutingDecision:
    usable = sorted((q for q in quotes if q.error is None), key=lambda q: q.amount_out, reverse=True)
    if not usable:
        reasons = "; ".join(f"{q.venue}: {q.error}" for q in quotes) or "no pool for this pair"
        raise NoRoute(f"no venue can fill the order ({reasons})")
    best = usable[0]
    if len(usable) == 1:
        others = [q for q in quotes if q is not best]
        why = f"; {others[0].venue} unavailable: {others[0].error}" if others else ""
        return RoutingDecision(best, tuple(quotes), f"{best.venue} is the only venue able to fill{why}")
    runner_up = usable[1]
    if best.amount_out == runner_up.amount_out:
        reason = f"{best.venue} and {runner_up.venue} quote the same output; {best.venue} chosen"
    else:
        gain = Decimal(best.amount_out - runner_up.amount_out) / Decimal(runner_up.amount_out) * 100
        reason = (
            f"{best.venue} returns {gain.quantize(Decimal('0.0001'))}% more than {runner_up.venue} "
            f"after fees and price impact ({best.amount_out} vs {runner_up.amount_out} base units)"
        )
    return RoutingDecision(best, tuple(quotes), reason)
