"""Order rules: what an order is, its statuses and which status may follow which."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .limit_orders import LimitTerms
from .routing import RoutingMode
from .sniper_orders import SniperTerms
from .tokens import Token
from .transactions import RouteOrder
from .venues import LegReceipt


class Status(StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    OPEN = "open"
    TRIGGERED = "triggered"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_cancellable(self) -> bool:
        return Status.CANCELLED in TRANSITIONS.get(self, frozenset())


FINAL_STATUSES = frozenset({Status.CONFIRMED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.ROUTING, Status.OPEN, Status.CANCELLED, Status.FAILED}),
    Status.OPEN: frozenset({Status.TRIGGERED, Status.CANCELLED, Status.EXPIRED, Status.FAILED}),
    Status.TRIGGERED: frozenset({Status.ROUTING, Status.CANCELLED, Status.EXPIRED, Status.FAILED}),
    # Until the swap is submitted an order can be cancelled: every later step is conditional on the status it
    # read, so a worker that routed or built it meanwhile stops instead of swapping. A limit order the fresh quote
    # cannot fill rests again (open), or, if it may not rest (IOC, FOK) or its time is up, expires.
    Status.ROUTING: frozenset({Status.BUILDING, Status.CANCELLED, Status.FAILED, Status.OPEN, Status.EXPIRED}),
    Status.BUILDING: frozenset({Status.SUBMITTED, Status.CANCELLED, Status.FAILED, Status.EXPIRED}),
    # A submitted swap that failed transiently is submitted again: the order stays submitted, one attempt more. A
    # limit order's swap the venue refused below its least output rests again, or expires.
    Status.SUBMITTED: frozenset({Status.SUBMITTED, Status.CONFIRMED, Status.FAILED, Status.OPEN, Status.EXPIRED}),
}


# A signed Solana transaction lands only while its recent blockhash is valid (150 slots, 60-90 s); the venues refuse
# it afterwards. Past that, and a grace for a swap a venue accepted just in time and is still committing, a swap that
# is not on the venue's ledger never will be, so the order can fail without risk of executing later.
SIGNATURE_VALIDITY = timedelta(seconds=60)
SETTLEMENT_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class RetryPolicy:
    """Transient venue failures are retried with exponential backoff, at most ``max_attempts`` submissions."""

    max_attempts: int = 3
    base_delay_seconds: int = 2

    def delay_after(self, attempt: int) -> int:
        return self.base_delay_seconds * 2 ** (attempt - 1)


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    type: OrderType
    token_in: Token
    token_out: Token
    amount_in: int  # base units of token_in
    slippage_bps: int | None  # a market or sniper order's tolerance; a limit order has its limit instead
    status: Status
    seq: int
    created_at: datetime
    updated_at: datetime
    venue: str | None = None
    pool_id: str | None = None
    min_out: int | None = None
    tx_signature: str | None = None
    amount_out: int | None = None
    failure_reason: str | None = None
    attempts: int = 0  # swap submissions so far
    valid_until: datetime | None = None  # the venues refuse the signed swap after this
    sweeps: int = 0  # times the sweeper found it stuck and enqueued it again
    limit: LimitTerms | None = None  # a limit order's terms
    fill_amount_in: int | None = None  # what the swap sells, when an IOC fills only part of amount_in
    sniper: SniperTerms | None = None  # a sniper order's terms
    routing: RoutingMode = RoutingMode.SMART
    route: tuple[RouteOrder, ...] | None = None  # a route of more than one leg, as built (else ``pool_id`` alone)
    legs: tuple[LegReceipt, ...] = ()  # the swaps of its transaction, once confirmed
    client_order_id: str | None = None  # the trader's own id, unique among the user's orders

    def created_message(self) -> dict[str, Any]:
        """The WebSocket frame an account's followers receive when the order is placed (its updates follow)."""
        return {"type": "order.created", "orderId": self.id, "clientOrderId": self.client_order_id,
                "orderType": str(self.type), "tokenIn": self.token_in.symbol, "tokenOut": self.token_out.symbol,
                "amountIn": self.token_in.format(self.amount_in), "at": self.created_at.isoformat()}

    @property
    def swap_amount_in(self) -> int:
        return self.amount_in if self.fill_amount_in is None else self.fill_amount_in

    @property
    def transaction(self) -> tuple[RouteOrder, ...]:
        """What its swap transaction sells down which pools, as built: its route, or the one pool it was routed to."""
        if self.route:
            return self.route
        assert self.pool_id is not None  # set with the route when building
        return (RouteOrder(self.swap_amount_in, ((self.pool_id, self.token_in.symbol, self.token_out.symbol),)),)

    @property
    def rests(self) -> bool:
        """Whether the order waits (``open``) for the venues to meet its terms: GTC and GTD limit orders, snipers."""
        return self.sniper is not None or (self.limit is not None and self.limit.time_in_force.rests)

    @property
    def expires_at(self) -> datetime | None:
        """When a limit or sniper order's time is up (a market order has none)."""
        if self.sniper is not None:
            return self.sniper.expires_at
        return None if self.limit is None else self.limit.expires_at

    def expired_at(self, now: datetime) -> bool:
        """Whether a limit or sniper order's time is up (a market order's never is)."""
        expires_at = self.expires_at
        return expires_at is not None and now >= expires_at

    def swap_may_still_land(self, now: datetime) -> bool:
        """Whether a swap submitted under this order's signature could still execute."""
        return self.valid_until is not None and now <= self.valid_until + SETTLEMENT_GRACE

    @property
    def executed_price(self) -> Decimal | None:
        """Units of token_out received per unit of token_in, in human units."""
        if self.amount_out is None:
            return None
        return (self.token_out.from_units(self.amount_out) / self.token_in.from_units(self.swap_amount_in)).quantize(
            Decimal(1).scaleb(-self.token_out.decimals)
        )


@dataclass(frozen=True)
class OrderEvent:
    order_id: str
    seq: int
    status: Status
    at: datetime
    data: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """The WebSocket frame every subscriber receives for this event."""
        return {
            "type": "order.update",
            "orderId": self.order_id,
            "seq": self.seq,
            "status": str(self.status),
            "at": self.at.isoformat(),
            "data": self.data,
        }


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def transaction_signature(order_id: str, nonce: int = 0) -> str:
    """The swap's signature, fixed before submission so a retry can ask the venue what happened to it.

    Deterministic in the order id: a 64-byte value rendered in base58 like a Solana signature. A transaction signed
    again after its blockhash expired has another signature (``nonce``).
    """
    digest = hashlib.sha512(f"order-engine:{order_id}{f':{nonce}' if nonce else ''}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_BASE58[rem])
    return "".join(reversed(chars))
