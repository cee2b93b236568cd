"""The mock Solana venues (Raydium, Meteora): pools and a swap ledger in PostgreSQL's ``dex`` schema.

Like a chain, the venues share state between every caller: each swap locks its pool row, runs the pool's
real math, and records the swap under its transaction signature in the same transaction. Asking for a
signature's status afterwards is how a retry learns whether its swap already happened.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg.types.json import Json

from ..domain.markets import pair_of
from ..domain.pools import Pool, PoolError, SwapOutcome, pool_from_state
from ..domain.routing import VenueQuote, quote_pool
from ..domain.venues import (
    LatencyRange,
    SlippageExceeded,
    SwapReceipt,
    SwapRejected,
    VenueError,
    VenueUnavailable,
)
from ..services.ports import NoPoolChanges, PoolChanges
from .postgres import DbPool


def _receipt(row: dict[str, Any]) -> SwapReceipt:
    return SwapReceipt(
        row["signature"], row["memo"], row["pool_id"], row["venue"], row["token_in"], row["token_out"],
        int(row["amount_in"]), int(row["amount_out"]), int(row["fee"]), row["slot"], row["executed_at"],
    )


_FAILURES: dict[str, type[VenueError]] = {"SwapRejected": SwapRejected, "SlippageExceeded": SlippageExceeded}


def _execute(pool: Pool, token_in: str, amount_in: int, min_out: int, valid_until: datetime | None,
             now: datetime) -> SwapOutcome:
    if valid_until is not None and now > valid_until:
        raise SwapRejected("transaction expired: its blockhash is no longer valid, so it can never land")
    try:
        outcome = pool.swap(token_in, amount_in, int(now.timestamp()))
    except PoolError as error:
        raise SwapRejected(str(error)) from error
    if outcome.amount_out < min_out:
        raise SlippageExceeded(f"slippage tolerance exceeded: {outcome.amount_out} out is below the minimum {min_out}")
    return outcome


class MockDexNetwork:
    def __init__(
        self,
        pool: DbPool,
        quote_latency: LatencyRange,
        swap_latency: LatencyRange,
        failure_rate: float,
        now: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        changes: PoolChanges | None = None,
    ):
        self._db = pool
        self._quote_latency = quote_latency
        self._swap_latency = swap_latency
        self._failure_rate = failure_rate
        self._now = now
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._changes = changes or NoPoolChanges()  # every committed change of a pool is published

    def seed(self, pools: list[Pool]) -> None:
        """Create the pools that do not exist yet; existing pools keep their state."""
        with self._db.connection() as conn, conn.transaction():
            for p in pools:
                conn.execute(
                    """INSERT INTO dex.pools (id, venue, base, quote, state, updated_at)
                       VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
                    (p.id, p.venue, p.base, p.quote, Json(p.to_state()), self._now()),
                )

    def pools(self, token_in: str | None = None, token_out: str | None = None) -> list[Pool]:
        query, params = "SELECT * FROM dex.pools", tuple[str, ...]()
        if token_in and token_out:
            pair = pair_of(token_in, token_out)
            if pair is None:
                return []
            query, params = "SELECT * FROM dex.pools WHERE base = %s AND quote = %s", pair
        with self._db.connection() as conn:
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
        return [pool_from_state(r["venue"], r["id"], r["base"], r["quote"], r["state"]) for r in rows]

    def quote(self, token_in: str, token_out: str, amount_in: int) -> list[VenueQuote]:
        """Every venue's quote for the pair, asked in parallel as a router would."""
        pools = self.pools(token_in, token_out)
        self._sleep(max((self._quote_latency.sample(self._rng) for _ in pools), default=0))
        now = int(self._now().timestamp())
        return [quote_pool(p, token_in, token_out, amount_in, now) for p in pools]

    def swap(
        self, signature: str, memo: str, pool_id: str, token_in: str, token_out: str, amount_in: int, min_out: int,
        valid_until: datetime | None = None, injected_failures: bool = True,
    ) -> SwapReceipt:
        """Execute once under ``signature``: a second call with it returns the first swap's receipt, or raises the
        first call's failure again. After ``valid_until`` (its blockhash expired) the signature is refused.
        ``DEX_FAILURE_RATE`` simulates the engine's own swaps failing; another trader's swap passes
        ``injected_failures=False``."""
        self._sleep(self._swap_latency.sample(self._rng))
        if injected_failures and self._rng.random() < self._failure_rate:
            raise VenueUnavailable("transaction expired before it landed (injected venue failure)")
        with self._db.connection() as conn, conn.transaction():
            # Lock the pool first: two attempts under one signature then queue up, and the second sees the first.
            row = conn.execute("SELECT * FROM dex.pools WHERE id = %s FOR UPDATE", (pool_id,)).fetchone()
            if row is None:
                raise SwapRejected(f"unknown pool {pool_id}")
            # A statement of its own, after the lock: its snapshot holds whatever the lock's last holder committed.
            earlier = conn.execute(
                """SELECT s.*, f.kind AS failed_kind, f.reason AS failed_reason
                   FROM (SELECT %(signature)s::text AS signature) AS asked
                   LEFT JOIN dex.swaps s ON s.signature = asked.signature
                   LEFT JOIN dex.failed_transactions f ON f.signature = asked.signature""",
                {"signature": signature},
            ).fetchone()
            assert earlier is not None  # a LEFT JOIN from a one-row subquery: always one row
            if earlier["signature"] is not None:
                return _receipt(earlier)
            if earlier["failed_kind"] is not None:
                raise _FAILURES[earlier["failed_kind"]](earlier["failed_reason"])
            now = self._now()
            pool = pool_from_state(row["venue"], row["id"], row["base"], row["quote"], row["state"])
            failure: SwapRejected | SlippageExceeded | None
            try:
                outcome = _execute(pool, token_in, amount_in, min_out, valid_until, now)
            except (SwapRejected, SlippageExceeded) as error:
                # Like a chain, the venue keeps the failed transaction (committed below, not rolled back):
                # that signature can never execute afterwards, whoever sends it again.
                conn.execute(
                    """INSERT INTO dex.failed_transactions (signature, memo, pool_id, kind, reason, failed_at)
                       VALUES (%s, %s, %s, %s, %s, %s)""",
                    (signature, memo, pool_id, type(error).__name__, str(error), now),
                )
                failure = error
            else:
                failure = None
                conn.execute(
                    "UPDATE dex.pools SET state = %s, swaps = swaps + 1, updated_at = %s WHERE id = %s",
                    (Json(outcome.pool_after.to_state()), now, pool_id),
                )
                inserted = conn.execute(
                    """INSERT INTO dex.swaps (signature, memo, pool_id, venue, token_in, token_out, amount_in,
                                              amount_out, fee, slot, executed_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, nextval('dex.slots'), %s) RETURNING *""",
                    (signature, memo, pool_id, pool.venue, token_in, token_out, amount_in, outcome.amount_out,
                     outcome.fee, now),
                ).fetchone()
        if failure is not None:
            raise failure
        assert inserted is not None  # INSERT ... RETURNING returns the row it inserted
        self._changes.changed(pool_id, row["base"], row["quote"])  # committed: the new price is there to read
        return _receipt(inserted)

    def swap_status(self, signature: str) -> SwapReceipt | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM dex.swaps WHERE signature = %s", (signature,)).fetchone()
        return _receipt(row) if row else None

    def swaps_for(self, memo: str) -> list[SwapReceipt]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dex.swaps WHERE memo = %s ORDER BY slot", (memo,)).fetchall()
        return [_receipt(r) for r in rows]
