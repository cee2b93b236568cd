"""What the use cases answer when a domain object alone does not say it all: typed, and free of any wire format
(``api/views.py`` renders them)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..domain.orders import Order, OrderEvent, Status
from ..domain.routing import RecordedDecision, RoutingDecision, RoutingMode
from ..domain.tokens import Token


@dataclass(frozen=True)
class PlacedOrder:
    """The answer to the request that placed an order; every repeat of its Idempotency-Key gets the same."""

    order_id: str
    status: Status


@dataclass(frozen=True)
class Executability:
    """An open limit order against the venues now: the best output for its whole size, what it requires, and the
    shortfall in basis points of the requirement (0 once it can fill)."""

    quoted_out: int
    required_out: int
    shortfall_bps: Decimal


@dataclass(frozen=True)
class OrderDetails:
    """An order whole: its current state, every event it went through, how it was routed (once it was), and for
    an open limit order why it has not filled yet (an open sniper's, what it waits for)."""

    order: Order
    events: list[OrderEvent]
    routing: RecordedDecision | None
    executable: Executability | None = None
    waiting_for: tuple[str, ...] | None = None  # an open sniper's: what its launch has yet to do


@dataclass(frozen=True)
class OrderPage:
    """One page of a user's orders, newest first, and where the next page starts (None: this is the last)."""

    orders: list[Order]
    next_cursor: str | None


@dataclass(frozen=True)
class MarketQuote:
    """What an order with these fields would get now: the route the worker would take, and its minimum output."""

    token_in: Token
    token_out: Token
    decision: RoutingDecision
    min_out: int
    slippage_bps: int
    routing: RoutingMode = RoutingMode.SMART


@dataclass(frozen=True)
class OrderFigures:
    """Orders by (status, venue); for each status, how many orders reached it within each latency bound
    (cumulative), the sum of those seconds and their count; swap retries and the sweeper's re-enqueues."""

    counts: dict[tuple[str, str], int]
    latencies: dict[str, tuple[list[int], float, int]]
    retries: int = 0
    sweeps: int = 0

    def plus(self, other: OrderFigures) -> OrderFigures:
        counts = dict(self.counts)
        for key, n in other.counts.items():
            counts[key] = counts.get(key, 0) + n
        latencies = dict(self.latencies)
        for status, (buckets, total, n) in other.latencies.items():
            mine = latencies.get(status, ([0] * len(buckets), 0.0, 0))
            latencies[status] = ([a + b for a, b in zip(mine[0], buckets, strict=True)], mine[1] + total, mine[2] + n)
        return OrderFigures(counts, latencies, self.retries + other.retries, self.sweeps + other.sweeps)
