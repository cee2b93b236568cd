"""What the use cases answer when a domain object alone does not say it all: typed, and free of any wire format
(``api/views.py`` renders them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.orders import Order, OrderEvent, Status
from ..domain.routing import RecordedDecision, RoutingDecision
from ..domain.tokens import Token


@dataclass(frozen=True)
class PlacedOrder:
    """The answer to the request that placed an order; every repeat of its Idempotency-Key gets the same."""

    order_id: str
    status: Status


@dataclass(frozen=True)
class OrderDetails:
    """An order whole: its current state, every event it went through, and how it was routed (once it was)."""

    order: Order
    events: list[OrderEvent]
    routing: RecordedDecision | None


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
