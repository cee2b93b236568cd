"""The mock Solana venues (Raydium, Meteora): pools and a swap ledger in PostgreSQL's ``dex`` schema.

Like a chain, the venues share state between every caller: each swap locks its pool row, runs the pool's
real math, and records the swap under its transaction signature in the same transaction. Asking for a
signature's status afterwards is how a retry learns whether its swap already happened.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Json

from ..domain.markets import PoolSnapshot
from ..domain.pools import Pool, PoolError, pool_from_state
from ..domain.tokens import Token, TokenListing
from ..domain.transactions import RouteOrder, run_transaction
from ..domain.venues import (
    LatencyRange,
    ListingConflict,
    SlippageExceeded,
    SwapReceipt,
    SwapRejected,
    VenueError,
    VenueUnavailable,
)
from ..services.ports import NoPoolChanges, PoolChanges
from .postgres import Connection, DbPool, read_leg, stored_leg


def _receipt(row: dict[str, Any]) -> SwapReceipt:
    legs = tuple(read_leg(leg) for leg in row.get("legs") or ())
    return SwapReceipt(
        row["signature"], row["memo"], row["pool_id"], row["venue"], row["token_in"], row["token_out"],
        int(row["amount_in"]), int(row["amount_out"]), int(row["fee"]), row["slot"], row["executed_at"], legs,
    )


def _pool(row: dict[str, Any]) -> Pool:
    return pool_from_state(row["venue"], row["id"], row["base"], row["quote"], row["state"])


def _listing(row: dict[str, Any]) -> TokenListing:
    return TokenListing(Token(row["symbol"], row["mint"], row["decimals"]), row["mint_authority_revoked"],
                        row["freeze_authority_revoked"])


# A pool p is on a route from a to b when it trades the pair, or joins one end to a token m that a pool q joins to
# the other end (p's other token is m).
_ROUTE_POOLS = """
    SELECT p.* FROM dex.pools p
    WHERE (p.base = %(a)s AND p.quote = %(b)s) OR (p.base = %(b)s AND p.quote = %(a)s)
       OR EXISTS (
           SELECT 1 FROM dex.pools q
           WHERE (p.base IN (%(a)s, %(b)s) AND p.quote NOT IN (%(a)s, %(b)s)
                  AND ((q.base = p.quote AND q.quote IN (%(a)s, %(b)s) AND q.quote <> p.base)
                       OR (q.quote = p.quote AND q.base IN (%(a)s, %(b)s) AND q.base <> p.base)))
              OR (p.quote IN (%(a)s, %(b)s) AND p.base NOT IN (%(a)s, %(b)s)
                  AND ((q.base = p.base AND q.quote IN (%(a)s, %(b)s) AND q.quote <> p.quote)
                       OR (q.quote = p.base AND q.base IN (%(a)s, %(b)s) AND q.base <> p.quote))))
    ORDER BY p.id"""

_FAILURES: dict[str, type[VenueError]] = {"SwapRejected": SwapRejected, "SlippageExceeded": SlippageExceeded}


def _earlier(conn: Connection, signature: str) -> SwapReceipt | None:
    """What the venue did with this signature before: its receipt, or its failure raised again (None: nothing).
    Asked after the pools' locks, in a statement of its own: its snapshot holds whatever their last holder
    committed."""
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
    return None


def _record_failure(conn: Connection, signature: str, memo: str, pool_id: str, error: VenueError,
                    now: datetime) -> None:
    """Like a chain, the venue keeps a failed transaction (committed, not rolled back): that signature can never
    execute afterwards, whoever sends it again."""
    conn.execute(
        """INSERT INTO dex.failed_transactions (signature, memo, pool_id, kind, reason, failed_at)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (signature, memo, pool_id, type(error).__name__, str(error), now),
    )


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
            query = "SELECT * FROM dex.pools WHERE (base = %s AND quote = %s) OR (base = %s AND quote = %s)"
            params = (token_in, token_out, token_out, token_in)
        with self._db.connection() as conn:
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
        return [_pool(r) for r in rows]

    def pool_snapshots(self, pool_ids: list[str] | None = None) -> list[PoolSnapshot]:
        """These pools (None: every pool) as their last change left them, with its slot."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dex.pools WHERE %(all)s OR id = ANY(%(ids)s) ORDER BY id",
                                {"all": pool_ids is None, "ids": pool_ids or []}).fetchall()
        return [PoolSnapshot(_pool(r), r["slot"], r["updated_at"]) for r in rows]

    def pairs(self) -> list[tuple[str, str]]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT DISTINCT base, quote FROM dex.pools ORDER BY base, quote").fetchall()
        return [(r["base"], r["quote"]) for r in rows]

    def listing(self, symbol_or_mint: str) -> TokenListing | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM dex.tokens WHERE symbol = %s OR mint = %s",
                               (symbol_or_mint, symbol_or_mint)).fetchone()
        return None if row is None else _listing(row)

    def listings(self) -> list[TokenListing]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dex.tokens ORDER BY listed_at, symbol").fetchall()
        return [_listing(r) for r in rows]

    def list_token(self, listing: TokenListing) -> TokenListing:
        token = listing.token
        try:
            with self._db.connection() as conn:
                row = conn.execute(
                    """INSERT INTO dex.tokens (symbol, mint, decimals, mint_authority_revoked,
                                               freeze_authority_revoked, listed_at)
                       VALUES (%s, %s, %s, %s, %s, %s) RETURNING *""",
                    (token.symbol, token.mint, token.decimals, listing.mint_authority_revoked,
                     listing.freeze_authority_revoked, self._now()),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            taken = self.listing(token.mint)
            if taken is not None:
                raise ListingConflict(f"the mint {token.mint} is listed already, as {taken.token.symbol}") from None
            raise ListingConflict(f"a token named {token.symbol} (in any case) is listed already") from None
        assert row is not None
        return _listing(row)

    def revoke(self, symbol: str, authority: str) -> TokenListing | None:
        column = {"mint": "mint_authority_revoked", "freeze": "freeze_authority_revoked"}[authority]
        with self._db.connection() as conn:
            row = conn.execute(f"UPDATE dex.tokens SET {column} = true WHERE symbol = %s RETURNING *",
                               (symbol,)).fetchone()
        if row is None:
            return None
        self._publish_pools_of(row["symbol"])  # a sniper waiting for the revoke is checked again
        return _listing(row)

    def open_pool(self, pool: Pool) -> Pool:
        with self._db.connection() as conn, conn.transaction():
            # One pool creation at a time: two launches of a pair in opposite orders cannot both pass the check.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('dex.pools'))")
            taken = conn.execute(
                """SELECT id, base, quote FROM dex.pools WHERE venue = %s
                   AND ((base = %s AND quote = %s) OR (base = %s AND quote = %s))""",
                (pool.venue, pool.base, pool.quote, pool.quote, pool.base)).fetchone()
            if taken is not None:
                raise ListingConflict(f"{pool.venue} has a {taken['base']}/{taken['quote']} pool already: "
                                      f"{taken['id']}")
            listed = conn.execute(
                "SELECT base, quote FROM dex.pools WHERE base = %s AND quote = %s LIMIT 1",
                (pool.quote, pool.base)).fetchone()
            if listed is not None:
                raise ListingConflict(f"the pair is listed as {pool.quote}/{pool.base}: launch it with base "
                                      f"{pool.quote} and quote {pool.base}")
            conn.execute(
                """INSERT INTO dex.pools (id, venue, base, quote, state, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (pool.id, pool.venue, pool.base, pool.quote, Json(pool.to_state()), self._now()),
            )
        self._changes.changed(pool.id, pool.base, pool.quote)
        return pool

    def burn_lp(self, pool_id: str) -> Pool | None:
        with self._db.connection() as conn:
            row = conn.execute(
                """UPDATE dex.pools SET state = (state::jsonb || '{"lp_burned": true}')::json, updated_at = %s
                   WHERE id = %s RETURNING *""", (self._now(), pool_id)).fetchone()
        if row is None:
            return None
        self._changes.changed(row["id"], row["base"], row["quote"])
        return _pool(row)

    def _publish_pools_of(self, symbol: str) -> None:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT id, base, quote FROM dex.pools WHERE base = %s OR quote = %s",
                                (symbol, symbol)).fetchall()
        for row in rows:
            self._changes.changed(row["id"], row["base"], row["quote"])

    def route_pools(self, token_in: str, token_out: str) -> list[Pool]:
        """Every pool a route of at most two hops between the tokens can use (the pair's pools, and each pool
        joining one of them to a token that has a pool with the other), read as a router's quote calls would,
        in parallel."""
        with self._db.connection() as conn:
            rows = conn.execute(_ROUTE_POOLS, {"a": token_in, "b": token_out}).fetchall()
        self._sleep(max((self._quote_latency.sample(self._rng) for _ in rows), default=0))
        return [_pool(r) for r in rows]

    def swap(
        self, signature: str, memo: str, pool_id: str, token_in: str, token_out: str, amount_in: int, min_out: int,
        valid_until: datetime | None = None, injected_failures: bool = True,
    ) -> SwapReceipt:
        """One swap on one pool: a transaction of one leg (see ``swap_route``)."""
        return self.swap_route(signature, memo, (RouteOrder(amount_in, ((pool_id, token_in, token_out),)),),
                               min_out, valid_until, injected_failures)

    def swap_route(
        self, signature: str, memo: str, routes: Sequence[RouteOrder], min_out: int,
        valid_until: datetime | None = None, injected_failures: bool = True,
    ) -> SwapReceipt:
        """Executes the transaction once under ``signature``: a second call with it returns the first one's receipt,
        or raises the first call's failure again; after ``valid_until`` (its blockhash expired) the signature is
        refused. Every pool it touches is locked in id order (two crossing routes never deadlock, and two attempts
        under one signature queue up, the second seeing the first), each leg runs in order, the total output is
        checked against ``min_out``, and every leg is committed, or none (a refused transaction leaves every pool as
        it was). ``DEX_FAILURE_RATE`` simulates the engine's own transactions failing; another trader's swap passes
        ``injected_failures=False``."""
        self._sleep(self._swap_latency.sample(self._rng))
        if injected_failures and self._rng.random() < self._failure_rate:
            raise VenueUnavailable("transaction expired before it landed (injected venue failure)")
        first_pool = routes[0].hops[0][0]
        pool_ids = sorted({pool_id for route in routes for pool_id, _, _ in route.hops})
        with self._db.connection() as conn, conn.transaction():
            rows = {r["id"]: r for r in conn.execute(
                "SELECT * FROM dex.pools WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (pool_ids,)).fetchall()}
            if len(rows) != len(pool_ids):  # refused before it runs, as a transaction naming no account is
                raise SwapRejected(f"unknown pool {sorted(set(pool_ids) - set(rows))[0]}")
            earlier = _earlier(conn, signature)
            if earlier is not None:
                return earlier
            now = self._now()
            failure: SwapRejected | SlippageExceeded | None = None
            try:
                if valid_until is not None and now > valid_until:
                    raise SwapRejected("transaction expired: its blockhash is no longer valid, so it can never land")
                try:
                    outcome = run_transaction({pid: _pool(row) for pid, row in rows.items()}, routes,
                                              int(now.timestamp()))
                except PoolError as error:
                    raise SwapRejected(str(error)) from error
                if outcome.amount_out < min_out:
                    raise SlippageExceeded(f"slippage tolerance exceeded: {outcome.amount_out} out is below the "
                                           f"minimum {min_out}")
            except (SwapRejected, SlippageExceeded) as error:
                _record_failure(conn, signature, memo, first_pool, error, now)
                failure = error
            else:
                first, last = outcome.legs[0], outcome.legs[-1]
                # One leg needs no list of legs: the entry's own fields are that leg (read back as one).
                legs = Json([stored_leg(leg) for leg in outcome.legs]) if len(outcome.legs) > 1 else None
                inserted = conn.execute(
                    """INSERT INTO dex.swaps (signature, memo, pool_id, venue, token_in, token_out, amount_in,
                                              amount_out, fee, slot, executed_at, legs)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, nextval('dex.slots'), %s, %s) RETURNING *""",
                    (signature, memo, first.pool_id, first.venue, first.token_in, last.token_out, outcome.amount_in,
                     outcome.amount_out, outcome.fee, now, legs),
                ).fetchone()
                assert inserted is not None  # INSERT ... RETURNING returns the row it inserted
                receipt = _receipt(inserted)
                for pool_id, pool in outcome.pools_after.items():
                    conn.execute("UPDATE dex.pools SET state = %s, swaps = swaps + 1, updated_at = %s, slot = %s "
                                 "WHERE id = %s", (Json(pool.to_state()), now, inserted["slot"], pool_id))
        if failure is not None:
            raise failure
        for pool_id in outcome.pools_after:  # committed: the new prices are there to read
            self._changes.changed(pool_id, rows[pool_id]["base"], rows[pool_id]["quote"])
        return receipt

    def swap_status(self, signature: str) -> SwapReceipt | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM dex.swaps WHERE signature = %s", (signature,)).fetchone()
        return _receipt(row) if row else None

    def swaps_for(self, memo: str) -> list[SwapReceipt]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dex.swaps WHERE memo = %s ORDER BY slot", (memo,)).fetchall()
        return [_receipt(r) for r in rows]
