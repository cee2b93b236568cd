"""What happened to an order, one type per kind of change, and the one place they become an event's data.

Each change names the status it moves the order to; its fields are the event's data, written in camelCase as
clients read them (``venue_ms`` is ``venueMs``), and left out when they have no value. A new kind of order adds
its changes here, and every event it stores is serialised the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from .orders import Status


@dataclass(frozen=True)
class OrderChange:
    status: ClassVar[Status]

    def data(self) -> dict[str, Any]:
        """The event's data: every field with a value, camelCased; times in ISO 8601, decimals as strings."""
        return {_camel(field.name): _json_value(value) for field in dataclasses.fields(self)
                if (value := getattr(self, field.name)) is not None}


@dataclass(frozen=True)
class Accepted(OrderChange):
    status: ClassVar[Status] = Status.PENDING
    type: str
    token_in: str
    token_out: str
    amount_in: str
    slippage_bps: int | None
    client_order_id: str | None = None


@dataclass(frozen=True)
class Opened(OrderChange):
    """A limit order rests until the venues can fill it at its limit, or it expires."""

    status: ClassVar[Status] = Status.OPEN
    side: str
    limit_price: str
    min_amount_out: str
    time_in_force: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Sniping(OrderChange):
    """A sniper waits for its launch: a pool of its pair open (plus its delay) and passing its checks."""

    status: ClassVar[Status] = Status.OPEN
    target: str  # the token's symbol, or its mint while no venue lists it
    target_mint: str
    expires_at: datetime
    max_price: str | None
    delay_seconds: int
    conditions: dict[str, Any]


@dataclass(frozen=True)
class Triggered(OrderChange):
    """The best executable quote for the order's whole size reached its least output (a limit order's), or a
    sniper's launch passed its checks."""

    status: ClassVar[Status] = Status.TRIGGERED
    cause: str  # what woke it: "placed" (fillable at once), "pool" (a pool's price moved), "recheck"
    pool_id: str
    quoted_out: str
    required_out: str | None = None


@dataclass(frozen=True)
class Reopened(OrderChange):
    """The price moved back between the trigger and the swap: the order rests again, never failed by the race."""

    status: ClassVar[Status] = Status.OPEN
    reason: str
    quoted_out: str | None = None
    required_out: str | None = None


@dataclass(frozen=True)
class Expired(OrderChange):
    status: ClassVar[Status] = Status.EXPIRED
    reason: str
    filled_amount_in: str | None = None


@dataclass(frozen=True)
class RoutingStarted(OrderChange):
    status: ClassVar[Status] = Status.ROUTING


@dataclass(frozen=True)
class Routed(OrderChange):
    """The route is chosen and the swap is built and signed."""

    status: ClassVar[Status] = Status.BUILDING
    venue: str
    reason: str
    quoted_out: str
    min_out: str
    tx_signature: str
    valid_until: datetime
    venue_ms: int


@dataclass(frozen=True)
class Submitted(OrderChange):
    status: ClassVar[Status] = Status.SUBMITTED
    venue: str | None
    tx_signature: str | None
    attempt: int


@dataclass(frozen=True)
class SignedAgain(OrderChange):
    """The signature expired unused; the swap is signed again as the next attempt."""

    status: ClassVar[Status] = Status.SUBMITTED
    venue: str | None
    tx_signature: str
    attempt: int
    previous_error: str
    valid_until: datetime


@dataclass(frozen=True)
class RetryScheduled(OrderChange):
    status: ClassVar[Status] = Status.SUBMITTED
    venue: str | None
    tx_signature: str | None
    attempt: int
    previous_error: str
    retry_in_seconds: int
    venue_ms: int


@dataclass(frozen=True)
class LastAttemptFailed(OrderChange):
    """Every attempt failed; the outcome is known once the signature can no longer land."""

    status: ClassVar[Status] = Status.SUBMITTED
    venue: str | None
    tx_signature: str | None
    attempt: int
    error: str
    outcome_known_at: datetime
    venue_ms: int | None = None


@dataclass(frozen=True)
class Confirmed(OrderChange):
    status: ClassVar[Status] = Status.CONFIRMED
    venue: str
    tx_signature: str
    amount_out: str
    executed_price: str
    slot: int
    venue_ms: int | None = None
    filled_amount_in: str | None = None  # an IOC filled in part: what it sold, and what it dropped
    unfilled_amount_in: str | None = None


@dataclass(frozen=True)
class Failed(OrderChange):
    status: ClassVar[Status] = Status.FAILED
    reason: str
    attempts: int | None = None
    venue_ms: int | None = None
    retryable: bool | None = None


@dataclass(frozen=True)
class Cancelled(OrderChange):
    status: ClassVar[Status] = Status.CANCELLED
    reason: str
    previous_status: str


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
