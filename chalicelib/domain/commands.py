"""What callers ask the use cases for, as plain values: the API layer builds them from validated requests (HTTP
bodies and queries, WebSocket messages), and a use case never sees how they arrived."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .limit_orders import TimeInForce
from .orders import OrderType, Status
from .routing import RoutingMode
from .sniper_orders import Conditions


@dataclass(frozen=True)
class Limit:
    """A limit order's terms as the trader gave them: exactly one of a price (quote per base) and a least output
    (in ``token_out``'s own units), and an expiry with GTD."""

    time_in_force: TimeInForce = TimeInForce.GTC
    limit_price: Decimal | None = None
    min_amount_out: Decimal | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Sniper:
    """A sniper's terms as the trader gave them (``token_out`` may be a mint no venue lists yet)."""

    expires_at: datetime
    max_price: Decimal | None = None
    conditions: Conditions = field(default_factory=Conditions)
    delay_seconds: int = 0


@dataclass(frozen=True)
class PlaceOrder:
    """Swap ``amount_in`` (in the token's own units, e.g. 1.5 SOL) of ``token_in`` for ``token_out``: at the market
    within ``slippage_bps``, or, with ``limit``, only at its limit."""

    token_in: str
    token_out: str
    amount_in: Decimal
    slippage_bps: int | None = 50
    type: OrderType = OrderType.MARKET
    limit: Limit | None = None
    sniper: Sniper | None = None
    routing: RoutingMode = RoutingMode.SMART
    client_order_id: str | None = None


@dataclass(frozen=True)
class ListOrders:
    """A page of the caller's orders, newest first; empty filters match every status or type."""

    statuses: tuple[Status, ...] = ()
    types: tuple[OrderType, ...] = ()
    limit: int = 20
    cursor: str | None = None  # where the previous page ended, as that page said
    client_order_id: str | None = None


@dataclass(frozen=True)
class QuoteSwap:
    """What swapping ``amount_in`` of ``token_in`` for ``token_out`` would get now, and its minimum out."""

    token_in: str
    token_out: str
    amount_in: Decimal
    slippage_bps: int = 50
    routing: RoutingMode = RoutingMode.SMART


@dataclass(frozen=True)
class TradeOnPool:
    """Another trader's swap straight on one pool, outside the engine, as any wallet trades on a chain: sell
    ``amount_in`` of ``token_in`` for the pool's other token, for at least ``min_amount_out`` if given."""

    pool_id: str
    token_in: str
    amount_in: Decimal
    min_amount_out: Decimal | None = None


@dataclass(frozen=True)
class ListToken:
    """List a new token on the venues, as its creator mints it on a chain (a fresh mint address if none given)."""

    symbol: str
    decimals: int
    mint: str | None = None
    mint_authority_revoked: bool = False
    freeze_authority_revoked: bool = False


@dataclass(frozen=True)
class OpenPool:
    """Open a pool of ``base``/``quote`` on a venue with these deposits (in the tokens' own units); swaps are
    refused until ``open_time`` (now if None). A Meteora pool takes a bin step."""

    venue: str
    base: str
    quote: str
    base_amount: Decimal
    quote_amount: Decimal
    open_time: datetime | None = None
    bin_step: int | None = None
