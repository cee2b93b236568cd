"""What callers ask the use cases for, as plain values: the API layer builds them from validated requests (HTTP
bodies and queries, WebSocket messages), and a use case never sees how they arrived."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .orders import OrderType, Status


@dataclass(frozen=True)
class PlaceOrder:
    """Swap ``amount_in`` (in the token's own units, e.g. 1.5 SOL) of ``token_in`` for ``token_out``."""

    token_in: str
    token_out: str
    amount_in: Decimal
    slippage_bps: int = 50
    type: OrderType = OrderType.MARKET


@dataclass(frozen=True)
class ListOrders:
    """A page of the caller's orders, newest first; empty filters match every status or type."""

    statuses: tuple[Status, ...] = ()
    types: tuple[OrderType, ...] = ()
    limit: int = 20
    cursor: str | None = None  # where the previous page ended, as that page said


@dataclass(frozen=True)
class QuoteSwap:
    """What swapping ``amount_in`` of ``token_in`` for ``token_out`` would get now, and its minimum out."""

    token_in: str
    token_out: str
    amount_in: Decimal
    slippage_bps: int = 50
