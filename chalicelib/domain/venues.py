"""What a venue answers when asked to swap: a receipt, or an error that says whether to try again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class VenueError(Exception):
    """A swap the venue refused; ``transient`` says whether trying again may succeed."""

    transient = False


class VenueUnavailable(VenueError):
    transient = True


class SlippageExceeded(VenueError):
    pass


class SwapRejected(VenueError):
    pass


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

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "orderId": self.memo,
            "poolId": self.pool_id,
            "venue": self.venue,
            "tokenIn": self.token_in,
            "tokenOut": self.token_out,
            "amountIn": str(self.amount_in),
            "amountOut": str(self.amount_out),
            "fee": str(self.fee),
            "slot": self.slot,
            "executedAt": self.executed_at.isoformat(),
        }
