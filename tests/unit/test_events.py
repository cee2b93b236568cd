"""Each kind of order change and the event data clients read from it: the wire shape is written in one place."""

from datetime import UTC, datetime

from chalicelib.domain.events import (
    Accepted,
    Cancelled,
    Confirmed,
    Failed,
    LastAttemptFailed,
    RetryScheduled,
    Routed,
    RoutingStarted,
    SignedAgain,
    Submitted,
)
from chalicelib.domain.orders import Status

AT = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)


def test_every_change_names_its_status_and_serialises_camelcased_without_empty_fields():
    cases = [
        (Accepted("market", "SOL", "USDC", "1.5", 50), Status.PENDING,
         {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 50}),
        (RoutingStarted(), Status.ROUTING, {}),
        (Routed("meteora", "best output", "151.2", "150.4", "sig", AT, 12), Status.BUILDING,
         {"venue": "meteora", "reason": "best output", "quotedOut": "151.2", "minOut": "150.4",
          "txSignature": "sig", "validUntil": "2026-01-01T12:00:05+00:00", "venueMs": 12}),
        (Submitted("meteora", "sig", 1), Status.SUBMITTED, {"venue": "meteora", "txSignature": "sig", "attempt": 1}),
        (SignedAgain("meteora", "sig2", 2, "the signature expired before it landed", AT), Status.SUBMITTED,
         {"venue": "meteora", "txSignature": "sig2", "attempt": 2,
          "previousError": "the signature expired before it landed", "validUntil": "2026-01-01T12:00:05+00:00"}),
        (RetryScheduled("meteora", "sig", 2, "timeout", 2, 30), Status.SUBMITTED,
         {"venue": "meteora", "txSignature": "sig", "attempt": 2, "previousError": "timeout", "retryInSeconds": 2,
          "venueMs": 30}),
        (LastAttemptFailed("meteora", "sig", 3, "timeout", AT), Status.SUBMITTED,
         {"venue": "meteora", "txSignature": "sig", "attempt": 3, "error": "timeout",
          "outcomeKnownAt": "2026-01-01T12:00:05+00:00"}),
        (Confirmed("meteora", "sig", "151.3", "100.8667", 42, venue_ms=9), Status.CONFIRMED,
         {"venue": "meteora", "txSignature": "sig", "amountOut": "151.3", "executedPrice": "100.8667", "slot": 42,
          "venueMs": 9}),
        (Failed("slippage exceeded", attempts=1), Status.FAILED, {"reason": "slippage exceeded", "attempts": 1}),
        (Failed("could not be queued", retryable=True), Status.FAILED,
         {"reason": "could not be queued", "retryable": True}),
        (Cancelled("cancelled by the user", "pending"), Status.CANCELLED,
         {"reason": "cancelled by the user", "previousStatus": "pending"}),
    ]
    for change, status, data in cases:
        assert change.status is status, change
        assert change.data() == data, change
