"""Choosing a route: quote every pool for the pair and take the best output after fees and impact, or, when it pays
``min_gain_bps`` more, a split of the amount over several pools or a hop through a third token (``route_search``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from .pools import Pool, PoolError, SwapOutcome
from .route_search import Leg, RoutePlan, find_route
from .transactions import RouteOrder


class RoutingMode(StrEnum):
    SMART = "smart"  # the best route over every pool: one, a split, or a hop, whichever pays most
    SINGLE = "single"  # one pool of the pair


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
class RouteLeg:
    """One swap of a route plan: its quote (pool, tokens, amounts, fee, impact), the share of the order's input its
    route carries, and which route of the split it belongs to (a hop's two legs share one)."""

    quote: VenueQuote
    percent: Decimal
    route: int

    @classmethod
    def whole(cls, quote: VenueQuote) -> RouteLeg:
        return cls(quote, Decimal(100), 0)


@dataclass(frozen=True)
class RoutingDecision:
    """The route taken: ``chosen`` sums it up (for one pool, that pool's quote; for several, the venues joined by
    ``+`` in route order, the first leg's pool and the totals), ``legs`` are its swaps, ``quotes`` every single pool's
    quote for the pair, and ``gain_bps`` what it beats the best single pool by (None: no pool trades the pair)."""

    chosen: VenueQuote
    quotes: tuple[VenueQuote, ...]
    reason: str
    legs: tuple[RouteLeg, ...] = ()
    gain_bps: Decimal | None = None

    @property
    def route_legs(self) -> tuple[RouteLeg, ...]:
        return self.legs or (RouteLeg.whole(self.chosen),)

    @property
    def is_single(self) -> bool:
        return len(self.route_legs) == 1

    def routes(self) -> tuple[RouteOrder, ...]:
        """The transaction's routes: each route's input and its hops, in leg order."""
        grouped: dict[int, list[VenueQuote]] = {}
        for leg in self.route_legs:
            grouped.setdefault(leg.route, []).append(leg.quote)
        return tuple(RouteOrder(quotes[0].amount_in, tuple((q.pool_id, q.token_in, q.token_out) for q in quotes))
                     for quotes in grouped.values())


@dataclass(frozen=True)
class RecordedDecision:
    """A routing decision as stored with its order: the venue taken, why, and every quote it compared."""

    venue: str
    reason: str
    quotes: tuple[VenueQuote, ...]
    decided_at: datetime
    legs: tuple[RouteLeg, ...] = ()  # empty for a decision stored before routes had legs (one pool: ``venue``)
    gain_bps: Decimal | None = None


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


def decide_route(pools: list[Pool], token_in: str, token_out: str, amount_in: int, now: int,
                 min_gain_bps: Decimal = Decimal(1), single: bool = False) -> RoutingDecision:
    """The route an order takes on these pools: the best single pool of the pair, unless a split or a hop pays
    ``min_gain_bps`` more (``single`` keeps one pool). Raises NoRoute when nothing can fill the amount."""
    direct = [p for p in pools if {p.base, p.quote} == {token_in, token_out}]
    quotes = [quote_pool(p, token_in, token_out, amount_in, now) for p in direct]
    if single:
        return replace(choose_route(quotes), gain_bps=Decimal(0))
    plan = find_route(pools, token_in, token_out, amount_in, now, min_gain_bps)
    if plan is None:
        return choose_route(quotes)  # raises NoRoute, naming each pool's reason
    if len(plan.legs) == 1 and len(direct) > 0:
        chosen = choose_route(quotes)
        return RoutingDecision(chosen.chosen, chosen.quotes, chosen.reason, gain_bps=Decimal(0))
    return _multi_leg(plan, quotes, token_in, token_out)


def _multi_leg(plan: RoutePlan, quotes: list[VenueQuote], token_in: str, token_out: str) -> RoutingDecision:
    legs: list[RouteLeg] = []
    for index, (route, _) in enumerate(plan.shares):  # the plan's legs come route by route, in this order
        route_legs = plan.legs[len(legs):len(legs) + len(route.pools)]
        legs.extend(RouteLeg(_leg_quote(leg), plan.percent(route), index) for leg in route_legs)
    venues = "+".join(dict.fromkeys(leg.quote.venue for leg in legs))
    first_fees = sum(leg.quote.fee for leg in legs if leg.quote.token_in == token_in)
    impact = sum((leg.quote.price_impact_pct * leg.percent / 100 for leg in legs), Decimal(0))
    chosen = VenueQuote(venues, legs[0].quote.pool_id, token_in, token_out, plan.amount_in, plan.amount_out,
                        first_fees, impact.quantize(Decimal("0.0001")))
    return RoutingDecision(chosen, tuple(quotes), _reason(plan, legs, quotes), tuple(legs), plan.gain_bps)


def _leg_quote(leg: Leg) -> VenueQuote:
    return VenueQuote(leg.pool.venue, leg.pool.id, leg.token_in, leg.token_out, leg.amount_in, leg.amount_out,
                      leg.fee, leg.price_impact_pct)


def _reason(plan: RoutePlan, legs: list[RouteLeg], quotes: list[VenueQuote]) -> str:
    routes: dict[int, list[RouteLeg]] = {}
    for leg in legs:
        routes.setdefault(leg.route, []).append(leg)
    parts = []
    for route_legs in routes.values():
        swaps = ", then ".join(f"{leg.quote.token_in}→{leg.quote.token_out} on {leg.quote.venue}" for leg in route_legs)
        parts.append(f"{route_legs[0].percent}% {swaps}")
    what = ("split " if len(routes) > 1 else "routed ") + "; ".join(parts)
    usable = [q for q in quotes if q.error is None]
    if plan.gain_bps is None or not usable:
        return f"{what}: no single pool trades the pair"
    best = max(usable, key=lambda q: q.amount_out)
    return (f"{what}: {plan.gain_bps} bp more than {best.venue} alone after fees and price impact "
            f"({plan.amount_out} vs {best.amount_out} base units)")
