"""The rule that settles a submitted order: send the swap, retry it, wait for its signature to expire, or fail.

Pure: the executor asks, then carries the answer out. A swap's signed transaction can land until its signature
expires (as a Solana transaction's blockhash does), and another delivery of the same message may have sent it, so
an order whose every attempt failed fails only once nothing sent under its signature can land any more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .orders import SETTLEMENT_GRACE, Order, RetryPolicy


class Step(StrEnum):
    SEND = "send"  # submit the swap under the order's signature
    SIGN_AGAIN = "sign_again"  # the signature expired unused: a new one, as the next attempt
    RETRY = "retry"  # a transient failure: the message comes back after a backoff
    AWAIT_EXPIRY = "await_expiry"  # every attempt failed: decide once the signature can no longer land
    FAIL = "fail"  # nothing sent under the signature can land: the order fails


@dataclass(frozen=True)
class Settlement:
    step: Step
    delay_seconds: int = 0  # RETRY and AWAIT_EXPIRY: when the order's message should come back


def before_sending(order: Order, now: datetime, retry: RetryPolicy) -> Settlement:
    """No receipt for the order's signature (``now`` read before the venue was asked): what to do next."""
    expired = order.valid_until is not None and now > order.valid_until
    if order.failure_reason is not None:  # the last attempt failed already
        return until_expiry(order, now)
    if expired:
        # Sent by a delivery that died, or kept in the queue until it expired: once certain it did not land, it is
        # signed again as the next attempt.
        if order.swap_may_still_land(now) or order.attempts >= retry.max_attempts:
            return until_expiry(order, now)
        return Settlement(Step.SIGN_AGAIN)
    return Settlement(Step.SEND)


def after_failed_send(order: Order, transient: bool, now: datetime, retry: RetryPolicy) -> Settlement:
    """The venue refused or failed the swap this attempt sent."""
    if not transient:  # the venue recorded the failure under the signature: no copy of the swap can land now
        return Settlement(Step.FAIL)
    if order.attempts >= retry.max_attempts:
        return until_expiry(order, now)
    return Settlement(Step.RETRY, retry.delay_after(order.attempts))


def until_expiry(order: Order, now: datetime) -> Settlement:
    """Wait until nothing sent under the signature can land, or fail now if that is already so."""
    if not order.swap_may_still_land(now):
        return Settlement(Step.FAIL)
    assert order.valid_until is not None  # may still land: it has a signature with an expiry
    decided_at = order.valid_until + SETTLEMENT_GRACE
    return Settlement(Step.AWAIT_EXPIRY, max(1, math.ceil((decided_at - now).total_seconds())))
