"""Limits: per user, a token bucket refills ``rate`` tokens a second up to ``burst`` (each request takes one); per
order, the most it may sell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

# The most one order may sell, in tokenIn (MAX_AMOUNT_IN): a bound on what a typo can cost.
DEFAULT_MAX_AMOUNT_IN = Decimal("1000000000")


@dataclass(frozen=True)
class TokenBucket:
    rate: float  # tokens added per second
    burst: int  # the most tokens the bucket holds: how many requests may come at once

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a rate above 0 and a burst of at least 1")

    def take(self, tokens: float, last_ms: int, now_ms: int, cost: int = 1) -> tuple[float, int]:
        """The tokens left after this request, and how many milliseconds to wait first (0: allowed now).

        ``tokens`` is what the bucket held at ``last_ms``; a new bucket starts full."""
        available = min(self.burst, tokens + max(0, now_ms - last_ms) * self.rate / 1000)
        if available >= cost:
            return available - cost, 0
        return available, math.ceil((cost - available) * 1000 / self.rate)

    @property
    def idle_ms(self) -> int:
        """After this long without requests the bucket is full again, so its state can be forgotten."""
        return math.ceil(self.burst / self.rate * 1000)
