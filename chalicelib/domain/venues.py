"""What a venue answers when asked to swap: a receipt, or an error that says whether to try again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transactions reads this module's receipts
    from .transactions import RouteOrder


class VenueError(Exception):
    """A swap the venue refused; ``transient`` says whether trying again may succeed."""

    transient = False


class VenueUnavailable(VenueError):
    transient = True


class SlippageExceeded(VenueError):
    pass


class SwapRejected(VenueError):
    pass


class ListingConflict(Exception):
    """A token or pool the venues list already (a symbol, a mint, a venue's pool of a pair)."""


@dataclass(frozen=True)
class LegReceipt:
    """One swap of a multi-leg transaction, on one pool; amounts in base units, the fee in ``token_in``."""

    pool_id: str
    venue: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int


@dataclass(frozen=True)
class SwapReceipt:
    signature: str
    memo: str
    pool_id: str
    venue: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int
    slot: int
    executed_at: datetime
    legs: tuple[LegReceipt, ...] = ()  # a multi-leg transaction's swaps in order (its totals are the fields above)

    @property
    def swaps(self) -> tuple[LegReceipt, ...]:
        """Every swap of the transaction in order: its legs, or, for a single swap, itself."""
        return self.legs or (LegReceipt(self.pool_id, self.venue, self.token_in, self.token_out, self.amount_in,
                                        self.amount_out, self.fee),)


@dataclass(frozen=True)
class SwapRequest:
    """One transaction sent to the venues: every route's legs, all or nothing, under ``signature``, refused below
    ``min_out`` or after ``valid_until``. The venues execute the requests that reach them together in one slot."""

    signature: str
    memo: str
    routes: tuple[RouteOrder, ...]
    min_out: int
    valid_until: datetime | None = None

    @property
    def pool_ids(self) -> set[str]:
        return {pool_id for route in self.routes for pool_id, _, _ in route.hops}


@dataclass(frozen=True)
class LatencyRange:
    """Simulated network and confirmation time, in milliseconds: a value or an inclusive range."""

    low_ms: float
    high_ms: float

    @classmethod
    def parse(cls, text: str) -> LatencyRange:
        low, _, high = text.strip().partition("-")
        low_ms = float(low)
        high_ms = float(high) if high else low_ms
        if low_ms < 0 or high_ms < low_ms:
            raise ValueError(f"invalid latency range {text!r}: expected N or LOW-HIGH milliseconds")
        return cls(low_ms, high_ms)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low_ms, self.high_ms) / 1000
