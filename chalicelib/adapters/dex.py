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
from ..domain.transactions import RouteOrder, TransactionOutcome, run_transaction
from ..domain.venues import (
    LatencyRange,
    ListingConflict,
    SlippageExceeded,
    SwapReceipt,
    SwapRejected,
    SwapRequest,
    VenueError,
    VenueUnavailable,
)
from ..services.ports import NoPoolChanges, PoolChanges
from .postgres import Connection, DbPool, atomic, read_leg, stored_leg


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


def _earlier_outcomes(conn: Connection, signatures: list[str]) -> dict[str, SwapReceipt | VenueError]:
    """What the venue did with these signatures before: each one's receipt, or its failure (absent: nothing).
    Asked after the pools' locks, in a statement of its own: its snapshot holds whatever their last holder
    committed."""
    rows = conn.execute(
        """SELECT s.*, asked.signature AS asked, f.kind AS failed_kind, f.reason AS failed_reason
           FROM unnest(%(signatures)s::text[]) AS asked(signature)
           LEFT JOIN dex.swaps s ON s.signature = asked.signature
           LEFT JOIN dex.failed_transactions f ON f.signature = asked.signature
           WHERE s.signature IS NOT NULL OR f.kind IS NOT NULL""",
        {"signatures": signatures},
    ).fetchall()
    return {row["asked"]: _receipt(row) if row["signature"] is not None
            else _FAILURES[row["failed_kind"]](row["failed_reason"]) for row in rows}


def _execute(pools: dict[str, Pool], request: SwapRequest, now: datetime) -> TransactionOutcome:
    """Runs one transaction of a slot on the pools' current state; its refusal raised."""
    if request.valid_until is not None and now > request.valid_until:
        raise SwapRejected("transaction expired: its blockhash is no longer valid, so it can never land")
    try:
        outcome = run_transaction({pool_id: pools[pool_id] for pool_id in request.pool_ids}, request.routes,
                                  int(now.timestamp()))
    except PoolError as error:
        raise SwapRejected(str(error)) from error
    if outcome.amount_out < request.min_out:
        raise SlippageExceeded(f"slippage tolerance exceeded: {outcome.amount_out} out is below the minimum "
                               f"{request.min_out}")
    return outcome


def _receipt_of(request: SwapRequest, outcome: TransactionOutcome, slot: int, now: datetime) -> SwapReceipt:
    first, last = outcome.legs[0], outcome.legs[-1]
    return SwapReceipt(request.signature, request.memo, first.pool_id, first.venue, first.token_in, last.token_out,
                       outcome.amount_in, outcome.amount_out, outcome.fee, slot, now,
                       outcome.legs if len(outcome.legs) > 1 else ())


def _swaps_on(pool_id: str, executed: list[tuple[SwapReceipt, TransactionOutcome]]) -> int:
    return sum(1 for _, outcome in executed if pool_id in outcome.pools_after)


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
        return self.route_pools_for([(token_in, token_out)])[(token_in, token_out)]

    def route_pools_for(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Pool]]:
        """``route_pools`` of each (token in, token out) pair, read in one transaction and quoted in parallel."""
        with self._db.connection() as conn, atomic(conn, len(pairs)):
            rows = {pair: conn.execute(_ROUTE_POOLS, {"a": pair[0], "b": pair[1]}).fetchall() for pair in pairs}
        quoted = sum(len(found) for found in rows.values())
        self._sleep(max((self._quote_latency.sample(self._rng) for _ in range(quoted)), default=0))
        return {pair: [_pool(r) for r in found] for pair, found in rows.items()}

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
        """One transaction alone in its slot (see ``swap_slot``): its receipt, or its refusal raised."""
        (result,) = self.swap_slot([SwapRequest(signature, memo, tuple(routes), min_out, valid_until)],
                                   injected_failures)
        if isinstance(result, VenueError):
            raise result
        return result

    def swap_slot(
        self, requests: Sequence[SwapRequest], injected_failures: bool = True,
    ) -> list[SwapReceipt | VenueError]:
        """Executes the transactions that reach the venues together as a chain's slot does: one database
        transaction locks every pool they touch (in id order: two slots never deadlock), reads each pool's state
        once, runs the transactions one after another in arrival order on the state the one before left, and
        writes each pool once. Each transaction keeps its own outcome, in request order: its receipt, or its
        refusal (recorded under its signature, as a chain keeps a failed transaction).

        Each transaction executes once under its signature: sent again, it returns the first one's receipt, or
        its refusal again; after its ``valid_until`` (its blockhash expired) it is refused. Every leg of a
        transaction runs in order, its total output is checked against its ``min_out``, and every leg of it is
        committed, or none. ``DEX_FAILURE_RATE`` simulates the engine's own transactions failing before they land;
        another trader's swap passes ``injected_failures=False``."""
        self._sleep(self._swap_latency.sample(self._rng))  # the slot's time: its transactions land together
        results: list[SwapReceipt | VenueError | None] = [None] * len(requests)
        for index in range(len(requests)):
            if injected_failures and self._rng.random() < self._failure_rate:
                results[index] = VenueUnavailable("transaction expired before it landed (injected venue failure)")
        sent = [index for index, result in enumerate(results) if result is None]
        touched: dict[str, dict[str, Any]] = {}
        if sent:
            with self._db.connection() as conn, conn.transaction():
                touched = self._run_slot(conn, requests, sent, results)
        for pool_id, row in touched.items():  # committed: the new prices are there to read
            self._changes.changed(pool_id, row["base"], row["quote"])
        done = [result for result in results if result is not None]
        assert len(done) == len(requests)  # every request has its outcome
        return done

    def _run_slot(self, conn: Connection, requests: Sequence[SwapRequest], sent: list[int],
                  results: list[SwapReceipt | VenueError | None]) -> dict[str, dict[str, Any]]:
        """Runs the sent requests in one locked transaction, filling in their results; the pools it changed."""
        pool_ids = sorted(set().union(*(requests[index].pool_ids for index in sent)))
        rows = {r["id"]: r for r in conn.execute(
            "SELECT * FROM dex.pools WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (pool_ids,)).fetchall()}
        earlier = _earlier_outcomes(conn, [requests[index].signature for index in sent])
        pools = {pool_id: _pool(row) for pool_id, row in rows.items()}
        now = self._now()
        slot: int | None = None  # the chain's slot, taken when its first transaction executes
        executed: list[tuple[SwapReceipt, TransactionOutcome]] = []
        failed: list[tuple[SwapRequest, VenueError]] = []
        for index in sent:
            request = requests[index]
            unknown = request.pool_ids - rows.keys()
            if unknown:  # refused before it runs, as a transaction naming no account is (and not recorded)
                results[index] = SwapRejected(f"unknown pool {sorted(unknown)[0]}")
                continue
            if request.signature in earlier:  # sent before, or twice in this slot: executed once
                results[index] = earlier[request.signature]
                continue
            try:
                outcome = _execute(pools, request, now)
            except (SwapRejected, SlippageExceeded) as error:
                failed.append((request, error))
                results[index] = earlier[request.signature] = error
                continue
            if slot is None:
                taken = conn.execute("SELECT nextval('dex.slots') AS slot").fetchone()
                assert taken is not None
                slot = int(taken["slot"])
            pools.update(outcome.pools_after)
            receipt = _receipt_of(request, outcome, slot, now)
            executed.append((receipt, outcome))
            results[index] = earlier[request.signature] = receipt
        changed = sorted({pool_id for _, outcome in executed for pool_id in outcome.pools_after})
        if executed:
            with conn.cursor() as cursor:  # executemany pipelines its statements: one round trip for each
                cursor.executemany(
                    """INSERT INTO dex.swaps (signature, memo, pool_id, venue, token_in, token_out, amount_in,
                                              amount_out, fee, slot, executed_at, legs)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    [(r.signature, r.memo, r.pool_id, r.venue, r.token_in, r.token_out, r.amount_in, r.amount_out,
                      r.fee, r.slot, r.executed_at,
                      # One leg needs no list of legs: the entry's own fields are that leg (read back as one).
                      Json([stored_leg(leg) for leg in r.legs]) if r.legs else None) for r, _ in executed])
                cursor.executemany(
                    "UPDATE dex.pools SET state = %s, swaps = swaps + %s, updated_at = %s, slot = %s WHERE id = %s",
                    [(Json(pools[pool_id].to_state()), _swaps_on(pool_id, executed), now, slot, pool_id)
                     for pool_id in changed])
        if failed:
            with conn.cursor() as cursor:
                cursor.executemany(
                    """INSERT INTO dex.failed_transactions (signature, memo, pool_id, kind, reason, failed_at)
                       VALUES (%s, %s, %s, %s, %s, %s)""",
                    [(request.signature, request.memo, request.routes[0].hops[0][0], type(error).__name__,
                      str(error), now) for request, error in failed])
        return {pool_id: rows[pool_id] for pool_id in changed}

    def swap_status(self, signature: str) -> SwapReceipt | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM dex.swaps WHERE signature = %s", (signature,)).fetchone()
        return _receipt(row) if row else None

    def swaps_for(self, memo: str) -> list[SwapReceipt]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dex.swaps WHERE memo = %s ORDER BY slot", (memo,)).fetchall()
        return [_receipt(r) for r in rows]
