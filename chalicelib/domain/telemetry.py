"""What each stored order event means for the engine's business metrics (CloudWatch, through Powertools' embedded
metric format): pure, so the rule is tested without any I/O and the same for every order type."""

from __future__ import annotations

from dataclasses import dataclass

from .orders import Order, OrderEvent, Status

# Metric names by the status an order ended in (expired: resting limit and sniper orders that ran out of time).
ENDED = {
    Status.CONFIRMED: "OrdersConfirmed",
    Status.FAILED: "OrdersFailed",
    Status.CANCELLED: "OrdersCancelled",
    Status.EXPIRED: "OrdersExpired",
}


@dataclass(frozen=True)
class Measurement:
    name: str
    unit: str  # CloudWatch's: Count, Seconds, Milliseconds
    value: float
    dimensions: tuple[tuple[str, str], ...]


def order_measurements(order: Order, event: OrderEvent) -> list[Measurement]:
    """The measurements one stored event gives: an order placed, an order ended (with the seconds from its
    submission), a swap retried, and the time the venue took for this step. Dimensions: the order's type, and its
    venue once routed (``none`` before)."""
    venue = str(event.data.get("venue") or order.venue or "none")
    by_type = (("type", str(order.type)),)
    by_type_and_venue = (*by_type, ("venue", venue))
    found: list[Measurement] = []
    if event.status is Status.PENDING and event.seq == 1:
        found.append(Measurement("OrdersPlaced", "Count", 1, by_type))
    ended = ENDED.get(event.status)
    if ended:
        found.append(Measurement(ended, "Count", 1, by_type_and_venue))
        seconds = max(0.0, (event.at - order.created_at).total_seconds())
        found.append(Measurement("SecondsToFinalStatus", "Seconds", seconds,
                                 (*by_type_and_venue, ("status", str(event.status)))))
    if "retryInSeconds" in event.data:
        found.append(Measurement("SwapRetries", "Count", 1, by_type_and_venue))
    venue_ms = event.data.get("venueMs")
    if isinstance(venue_ms, int | float) and venue_ms > 0:
        found.append(Measurement("VenueTime", "Milliseconds", float(venue_ms), by_type_and_venue))
    return found


def dead_lettered(count: int) -> list[Measurement]:
    return [Measurement("OrderMessagesDeadLettered", "Count", count, ())] if count else []
