"""PostgreSQL: schema migrations and the order repository (psycopg 3 with a connection pool)."""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, TypeAlias

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..domain.limit_orders import LimitTerms, Side, TimeInForce
from ..domain.orders import FINAL_STATUSES, Order, OrderEvent, OrderType, Status
from ..domain.routing import RecordedDecision, RouteLeg, RoutingDecision, RoutingMode, VenueQuote
from ..domain.sniper_orders import Conditions, SniperTerms
from ..domain.tokens import TOKENS
from ..domain.transactions import RouteOrder
from ..domain.venues import LegReceipt
from ..services.ports import ClientOrderIdTaken, OrderField, Transition

_MIGRATION_LOCK = 727_001  # an arbitrary advisory lock id shared by every process that migrates

# Every connection returns rows as dicts: the pool's type says so, and so does each query's.
Connection: TypeAlias = psycopg.Connection[DictRow]
DbPool: TypeAlias = ConnectionPool[Connection]


def connect_pool(conninfo: str, max_size: int = 10, prepared_statements: bool = True) -> DbPool:
    """``prepared_statements=False`` behind RDS Proxy: a server-side prepared statement pins the client's session to
    one database connection, which would undo the proxy's multiplexing."""
    options: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
    if not prepared_statements:
        options["prepare_threshold"] = None
    return ConnectionPool(
        conninfo,
        connection_class=psycopg.Connection[DictRow],
        min_size=1,
        max_size=max_size,
        kwargs=options,
        open=True,
        timeout=10,
        check=_still_connected,
    )


def atomic(conn: Connection, statements: int) -> AbstractContextManager[Any]:
    """A transaction block around several statements; one statement is atomic alone, without the block's two extra
    round trips (BEGIN, COMMIT)."""
    return conn.transaction() if statements > 1 else nullcontext()


def _still_connected(conn: psycopg.Connection[DictRow]) -> None:
    """The pool's check before lending a connection, without a round trip: an idle connection has nothing to read,
    so a readable socket means the server closed it (a restart, an idle timeout) and the pool replaces it."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()  # not select(): descriptors above 1024 are common in a busy process
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        conn.close()  # closed, the pool replaces it; left open, the pool would lend it again
        raise psycopg.OperationalError("the server closed the connection")


def migrate(pool: DbPool) -> list[str]:
    """Apply the SQL files in ``chalicelib/migrations`` not yet applied, in name order; safe to run concurrently."""
    files = sorted(
        (f for f in resources.files("chalicelib.migrations").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    applied_now = []
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in conn.execute("SELECT name FROM schema_migrations")}
        for file in files:
            if file.name in done:
                continue
            conn.execute(file.read_text())
            conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (file.name,))
            applied_now.append(file.name)
    return applied_now


def _order(row: dict[str, Any]) -> Order:
    return Order(
        id=str(row["id"]),
        user_id=row["user_id"],
        type=OrderType(row["type"]),
        token_in=TOKENS[row["token_in"]],
        token_out=TOKENS[row["token_out"]] if row["type"] != "sniper" else TOKENS.resolve_or_unlisted(row["token_out"]),
        amount_in=int(row["amount_in"]),
        slippage_bps=row["slippage_bps"],
        status=Status(row["status"]),
        seq=row["seq"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        venue=row["venue"],
        pool_id=row["pool_id"],
        min_out=None if row["min_out"] is None else int(row["min_out"]),
        tx_signature=row["tx_signature"],
        amount_out=None if row["amount_out"] is None else int(row["amount_out"]),
        failure_reason=row["failure_reason"],
        attempts=row["attempts"],
        sweeps=row["sweeps"],
        valid_until=row["valid_until"],
        fill_amount_in=None if row["fill_amount_in"] is None else int(row["fill_amount_in"]),
        limit=None if row["time_in_force"] is None else LimitTerms(
            Side(row["side"]), row["limit_price"], int(row["min_amount_out"]), TimeInForce(row["time_in_force"]),
            row["expires_at"]),
        sniper=None if row["type"] != "sniper" else SniperTerms(
            row["expires_at"], row["max_price"], Conditions.from_json(row["conditions"]), row["delay_seconds"]),
        routing=RoutingMode(row["routing"]),
        route=None if row["route"] is None else tuple(
            RouteOrder(int(r["amountIn"]), tuple((hop[0], hop[1], hop[2]) for hop in r["hops"])) for r in row["route"]),
        legs=tuple(read_leg(leg) for leg in row["legs"] or ()),
        client_order_id=row["client_order_id"],
    )


def stored_leg(leg: LegReceipt) -> dict[str, Any]:
    """A swap of a transaction as JSON, amounts in base units (the venues' ledger and an order keep this form)."""
    return {"poolId": leg.pool_id, "venue": leg.venue, "tokenIn": leg.token_in, "tokenOut": leg.token_out,
            "amountIn": str(leg.amount_in), "amountOut": str(leg.amount_out), "fee": str(leg.fee)}


def read_leg(stored: dict[str, Any]) -> LegReceipt:
    return LegReceipt(stored["poolId"], stored["venue"], stored["tokenIn"], stored["tokenOut"],
                      int(stored["amountIn"]), int(stored["amountOut"]), int(stored["fee"]))


def _stored_field(name: str, value: Any) -> Any:
    """A transition's field as its column takes it (a route and legs as JSON)."""
    if name == "route":
        return None if not value else Jsonb([{"amountIn": str(r.amount_in), "hops": [list(h) for h in r.hops]}
                                             for r in value])
    if name == "legs":
        return Jsonb([stored_leg(leg) for leg in value])
    return value


def _stored_token_out(order: Order) -> str:
    """A sniper's target is stored by its mint (it may not be listed yet); every other order's by its symbol."""
    return order.token_out.mint if order.sniper is not None else order.token_out.symbol


def _sniper_columns(terms: SniperTerms | None) -> tuple[object, ...]:
    if terms is None:
        return (None,) * 3
    return terms.max_price, Jsonb(terms.conditions.to_json()), terms.delay_seconds


def _mints(*symbols: str) -> list[str]:
    return [t.mint for t in (TOKENS.resolve(s) for s in symbols) if t is not None]


def _limit_columns(order: Order) -> tuple[object, ...]:
    terms = order.limit
    if terms is None:
        return (None, None, None, None, order.expires_at, None)
    return (str(terms.time_in_force), str(terms.side), terms.limit_price, terms.min_amount_out, terms.expires_at,
            terms.trigger_key)


def _event(row: dict[str, Any]) -> OrderEvent:
    return OrderEvent(str(row["order_id"]), row["seq"], Status(row["status"]), row["at"], row["data"])


# A routing decision's quotes are stored as JSON with the field names and amounts the API showed when the first rows
# were written; rows written since keep that form, so every stored decision reads back the same way.
def _stored_quote(q: VenueQuote) -> dict[str, Any]:
    token_in, token_out = TOKENS[q.token_in], TOKENS[q.token_out]
    return {
        "venue": q.venue,
        "poolId": q.pool_id,
        "tokenIn": q.token_in,
        "tokenOut": q.token_out,
        "amountIn": token_in.format(q.amount_in),
        "amountOut": token_out.format(q.amount_out),
        "fee": token_in.format(q.fee),
        "priceImpactPct": str(q.price_impact_pct),
        "error": q.error,
    }


def _read_quote(stored: dict[str, Any]) -> VenueQuote:
    token_in, token_out = TOKENS[stored["tokenIn"]], TOKENS[stored["tokenOut"]]
    return VenueQuote(
        stored["venue"], stored["poolId"], token_in.symbol, token_out.symbol,
        token_in.to_units(Decimal(stored["amountIn"])), token_out.to_units(Decimal(stored["amountOut"])),
        token_in.to_units(Decimal(stored["fee"])), Decimal(stored["priceImpactPct"]), stored["error"],
    )


# Columns an order's transition may set alongside its status, with their types.
_TRANSITION_COLUMNS = {
    "attempts": "integer", "venue": "text", "pool_id": "text", "min_out": "numeric", "tx_signature": "text",
    "amount_out": "numeric", "failure_reason": "text", "valid_until": "timestamptz", "fill_amount_in": "numeric",
    "route": "jsonb", "legs": "jsonb",
}
_TRANSITION_FIELDS = frozenset(_TRANSITION_COLUMNS)


def _transition_many_sql(names: tuple[str, ...]) -> str:
    # The steps arrive as one JSON array, read as rows: psycopg dumps a list parameter element by element in
    # Python (escaping each with a regular expression). Measured on ten orders' steps: 0.37 ms of client CPU as
    # one array per column, 0.14 as one JSON array.
    columns = ["id uuid", "expected text", "expected_seq integer", "new text", "data jsonb",
               *(f"{name} {_TRANSITION_COLUMNS[name]}" for name in names)]
    assignments = "".join(f", {name} = step.{name}" for name in names)
    return f"""WITH step AS (SELECT * FROM jsonb_to_recordset(%(steps)s) AS step({", ".join(columns)})),
                    moved AS (
                        UPDATE orders SET status = step.new, seq = orders.seq + 1, updated_at = %(at)s{assignments}
                        FROM step WHERE orders.id = step.id AND orders.status = step.expected
                                    AND orders.seq = step.expected_seq
                        RETURNING orders.id, orders.seq, step.new, step.data)
               INSERT INTO order_events (order_id, seq, status, at, data)
               SELECT id, seq, new, %(at)s, data FROM moved RETURNING order_id, seq"""


def _passing_sql(names: tuple[str, ...]) -> str:
    """``_transition_many_sql`` for steps that pass through statuses on the way (each its own event, numbered
    after the expected seq) and record routing decisions: one statement still, each part only for the orders
    moved."""
    columns = ["id uuid", "expected text", "expected_seq integer", "new text", "data jsonb", "via jsonb",
               "decision jsonb", *(f"{name} {_TRANSITION_COLUMNS[name]}" for name in names)]
    assignments = "".join(f", {name} = step.{name}" for name in names)
    return f"""WITH step AS (SELECT * FROM jsonb_to_recordset(%(steps)s) AS step({", ".join(columns)})),
                    moved AS (
                        UPDATE orders SET status = step.new, seq = orders.seq + 1 + jsonb_array_length(step.via),
                                          updated_at = %(at)s{assignments}
                        FROM step WHERE orders.id = step.id AND orders.status = step.expected
                                    AND orders.seq = step.expected_seq
                        RETURNING orders.id, orders.seq, step.expected_seq, step.new, step.data, step.via,
                                  step.decision),
                    decided AS (
                        INSERT INTO routing_decisions (order_id, chosen, reason, quotes, decided_at, legs, gain_bps)
                        SELECT moved.id, d.chosen, d.reason, d.quotes, d.decided_at, d.legs, d.gain_bps
                        FROM moved CROSS JOIN LATERAL jsonb_to_record(moved.decision)
                             AS d(chosen text, reason text, quotes jsonb, decided_at timestamptz, legs jsonb,
                                  gain_bps numeric)
                        WHERE moved.decision IS NOT NULL
                        ON CONFLICT (order_id) DO UPDATE
                        SET chosen = EXCLUDED.chosen, reason = EXCLUDED.reason, quotes = EXCLUDED.quotes,
                            decided_at = EXCLUDED.decided_at, legs = EXCLUDED.legs, gain_bps = EXCLUDED.gain_bps)
               INSERT INTO order_events (order_id, seq, status, at, data)
               SELECT moved.id, moved.expected_seq + passed.n, passed.status, passed.at, passed.data
               FROM moved CROSS JOIN LATERAL jsonb_to_recordset(moved.via)
                    AS passed(n integer, status text, at timestamptz, data jsonb)
               UNION ALL
               SELECT id, seq, new, %(at)s, data FROM moved
               RETURNING order_id, seq"""


def _transition_steps(names: tuple[str, ...], steps: list[Transition], at: datetime) -> dict[str, Any]:
    rows = []
    for step in steps:
        row: dict[str, Any] = {"id": step.order_id, "expected": str(step.expected), "expected_seq": step.expected_seq,
                               "new": str(step.new), "data": step.data}
        if step.via or step.decision is not None:
            row["via"] = [{"n": n, "status": str(p.status), "at": p.at.isoformat(), "data": p.data}
                          for n, p in enumerate(step.via, start=1)]
        if step.decision is not None:
            row["decision"] = _decision_json(step.decision, step.via[-1].at if step.via else at)
        for name in names:
            row[name] = _json_field(_stored_field(name, step.fields[name]))
        rows.append(row)
    return {"at": at, "steps": Jsonb(rows)}


def _json_field(value: Any) -> Any:
    """A column's value inside the steps' JSON: numbers as exact decimal text, times in ISO 8601, JSON as is."""
    if isinstance(value, Jsonb):
        return value.obj
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decision_row(order_id: str, decision: RoutingDecision, at: datetime) -> tuple[object, ...]:
    legs = _stored_legs(decision)
    return (order_id, decision.chosen.venue, decision.reason, Jsonb([_stored_quote(q) for q in decision.quotes]),
            at, None if legs is None else Jsonb(legs), decision.gain_bps)


def _decision_json(decision: RoutingDecision, at: datetime) -> dict[str, Any]:
    """``_decision_row`` inside a transition's steps."""
    return {"chosen": decision.chosen.venue, "reason": decision.reason,
            "quotes": [_stored_quote(q) for q in decision.quotes], "decided_at": at.isoformat(),
            "legs": _stored_legs(decision),
            "gain_bps": None if decision.gain_bps is None else str(decision.gain_bps)}


def _stored_legs(decision: RoutingDecision) -> list[dict[str, Any]] | None:
    return None if decision.is_single else [{**_stored_quote(leg.quote), "percent": str(leg.percent),
                                             "route": leg.route} for leg in decision.route_legs]


class PostgresPairLocks:
    """A pair's lock across every function process: a PostgreSQL advisory lock, held on one pooled connection for
    as long as the evaluation runs (a process that dies drops its connection, and the lock with it)."""

    def __init__(self, pool: DbPool):
        self._pool = pool

    @contextmanager
    def hold(self, pair: str) -> Iterator[None]:
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"trigger:{pair}",))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"trigger:{pair}",))


class PostgresOrders:
    """Orders, their events and routing decisions. Status changes are conditional, so two deliveries of one
    message cannot both advance an order, and every change appends exactly one event with the next ``seq``."""

    def __init__(self, pool: DbPool):
        self._pool = pool

    def ping(self) -> None:
        with self._pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")

    def add(self, order: Order, event: OrderEvent) -> bool:
        try:
            return self._insert(order, event)
        except psycopg.errors.UniqueViolation:  # only orders_client_order_id: a taken id does nothing
            assert order.client_order_id is not None
            taken = self.by_client_id(order.user_id, order.client_order_id)
            raise ClientOrderIdTaken(order.client_order_id, taken.id if taken else "unknown") from None

    def by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT * FROM orders WHERE user_id = %s AND client_order_id = %s",
                               (user_id, client_order_id)).fetchone()
        return _order(row) if row else None

    def _insert(self, order: Order, event: OrderEvent) -> bool:
        # One statement (one round trip): the first event is stored only with a newly inserted order.
        with self._pool.connection() as conn:
            return conn.execute(
                """WITH inserted AS (
                       INSERT INTO orders (id, user_id, type, token_in, token_out, amount_in, slippage_bps, status,
                                           seq, created_at, updated_at, time_in_force, side, limit_price,
                                           min_amount_out, expires_at, trigger_key, max_price, conditions,
                                           delay_seconds, routing, client_order_id)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                               %s)
                       ON CONFLICT (id) DO NOTHING RETURNING id)
                   INSERT INTO order_events (order_id, seq, status, at, data)
                   SELECT id, %s, %s, %s, %s FROM inserted""",
                (
                    order.id, order.user_id, str(order.type), order.token_in.symbol, _stored_token_out(order),
                    order.amount_in, order.slippage_bps, str(order.status), order.seq, order.created_at,
                    order.updated_at, *_limit_columns(order), *_sniper_columns(order.sniper), str(order.routing),
                    order.client_order_id, event.seq,
                    str(event.status), event.at,
                    Jsonb(event.data),
                ),
            ).rowcount == 1

    def get(self, order_id: str) -> Order | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,)).fetchone()
        return _order(row) if row else None

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT * FROM orders WHERE id = ANY(%s::uuid[])", (list(order_ids),)).fetchall()
        return {str(row["id"]): _order(row) for row in rows}

    def events(self, order_id: str, after_seq: int = 0) -> list[OrderEvent]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM order_events WHERE order_id = %s AND seq > %s ORDER BY seq", (order_id, after_seq)
            ).fetchall()
        return [_event(r) for r in rows]

    def own_events(self, order_id: str, user_id: str, after_seq: int = 0) -> list[OrderEvent] | None:
        with self._pool.connection() as conn:
            # No row: not the user's order. One row of nulls: the user's, with nothing after after_seq.
            rows = conn.execute(
                """SELECT e.* FROM orders o LEFT JOIN order_events e ON e.order_id = o.id AND e.seq > %s
                   WHERE o.id = %s AND o.user_id = %s ORDER BY e.seq""", (after_seq, order_id, user_id)
            ).fetchall()
        return None if not rows else [_event(r) for r in rows if r["seq"] is not None]

    def transition(
        self, order_id: str, expected: Status, new: Status, at: datetime, data: dict[str, Any],
        expected_seq: int | None = None, **fields: OrderField,
    ) -> OrderEvent | None:
        """Move the order from ``expected`` to ``new``; None when it is no longer in ``expected`` (or, given
        ``expected_seq``, when any other change was recorded since the caller read it)."""
        unknown = set(fields) - _TRANSITION_FIELDS
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} in a transition")
        assignments = "".join(f", {name} = %({name})s" for name in fields)
        same_seq = " AND seq = %(expected_seq)s" if expected_seq is not None else ""
        # One statement, so one round trip and atomic without a transaction block: the event is stored only if
        # the order moved.
        with self._pool.connection() as conn:
            row = conn.execute(
                f"""WITH moved AS (
                        UPDATE orders SET status = %(new)s, seq = seq + 1, updated_at = %(at)s{assignments}
                        WHERE id = %(id)s AND status = %(expected)s{same_seq} RETURNING id, seq)
                    INSERT INTO order_events (order_id, seq, status, at, data)
                    SELECT id, seq, %(new)s, %(at)s, %(data)s FROM moved RETURNING seq""",
                {"new": str(new), "at": at, "id": order_id, "expected": str(expected), "expected_seq": expected_seq,
                 "data": Jsonb(data), **{name: _stored_field(name, value) for name, value in fields.items()}},
            ).fetchone()
        return None if row is None else OrderEvent(order_id, row["seq"], new, at, data)

    def transition_many(self, steps: Sequence[Transition], at: datetime) -> list[OrderEvent | None]:
        """Each group of steps setting the same columns is one statement: an UPDATE joined to the steps' rows,
        conditional per order as ``transition`` is, storing the event of each order it moved (and, for a step that
        passes through statuses or records a decision, those events and that decision: ``_passing_sql``)."""
        stored: set[tuple[str, int]] = set()  # (order id, seq) of every event stored
        groups: dict[tuple[tuple[str, ...], bool], list[Transition]] = {}
        for step in steps:
            unknown = set(step.fields) - _TRANSITION_FIELDS
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)} in a transition")
            passing = bool(step.via) or step.decision is not None
            groups.setdefault((tuple(sorted(step.fields)), passing), []).append(step)
        with self._pool.connection() as conn, atomic(conn, len(groups)):
            for (names, passing), group in groups.items():
                statement = _passing_sql(names) if passing else _transition_many_sql(names)
                for row in conn.execute(statement, _transition_steps(names, group, at)):
                    stored.add((str(row["order_id"]), row["seq"]))
        events: list[OrderEvent | None] = []
        for step in steps:
            seq = step.expected_seq + len(step.via) + 1
            moved = (step.order_id, seq) in stored
            events.append(OrderEvent(step.order_id, seq, step.new, at, step.data) if moved else None)
        return events

    def page(
        self, user_id: str, statuses: list[Status], types: list[str], before: tuple[datetime, str] | None,
        limit: int, client_order_id: str | None = None,
    ) -> list[Order]:
        """The user's orders, newest first, created before ``before`` (created_at, id) if given."""
        conditions: list[str] = ["user_id = %s"]
        params: list[Any] = [user_id]
        if client_order_id is not None:
            conditions.append("client_order_id = %s")
            params.append(client_order_id)
        if statuses:
            conditions.append("status = ANY(%s)")
            params.append([str(s) for s in statuses])
        if types:
            conditions.append("type = ANY(%s)")
            params.append(list(types))
        if before is not None:
            conditions.append("(created_at, id) < (%s, %s)")
            params.extend(before)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM orders WHERE {' AND '.join(conditions)} ORDER BY created_at DESC, id DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [_order(r) for r in rows]

    def stuck(self, before: datetime, limit: int = 100) -> list[Order]:
        """Orders the worker should be moving that have not changed since ``before``, oldest first. A sniper
        waiting for its turn behind another of its pair is not stuck: the one ahead is (orders_sniping)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT * FROM orders o
                   WHERE status IN ('pending', 'routing', 'building', 'submitted', 'triggered') AND updated_at < %s
                   AND NOT (type = 'sniper' AND status = 'triggered' AND EXISTS (
                       SELECT 1 FROM orders ahead WHERE ahead.type = 'sniper' AND ahead.token_out = o.token_out
                       AND ahead.token_in = o.token_in
                       AND ahead.status IN ('triggered', 'routing', 'building', 'submitted')
                       AND (ahead.created_at, ahead.id) < (o.created_at, o.id)))
                   ORDER BY updated_at LIMIT %s""",
                (before, limit),
            ).fetchall()
        return [_order(r) for r in rows]

    def any_resting(self, base: str, quote: str) -> bool:
        with self._pool.connection() as conn:  # orders_resting, twice: one index probe per direction; orders_sniping
            row = conn.execute(
                """SELECT EXISTS (SELECT 1 FROM orders WHERE status = 'open' AND token_in = %s AND token_out = %s)
                       OR EXISTS (SELECT 1 FROM orders WHERE status = 'open' AND token_in = %s AND token_out = %s)
                       OR EXISTS (SELECT 1 FROM orders WHERE type = 'sniper' AND status = 'open'
                                  AND token_out = ANY(%s))
                       AS found""",
                (base, quote, quote, base, _mints(base, quote)),
            ).fetchone()
        return bool(row and row["found"])

    def snipers(self, base: str, quote: str, statuses: tuple[Status, ...] = (Status.OPEN,)) -> list[Order]:
        # The statuses are written into the statement, not passed as a parameter: only then can the planner see that
        # they fall within orders_sniping's predicate and use the index (a parameter would make it read every order).
        query = sql.SQL("""SELECT * FROM orders WHERE type = 'sniper' AND status IN ({}) AND token_out = ANY(%s)
                           AND token_in IN (%s, %s) ORDER BY created_at, id""").format(
            sql.SQL(", ").join(sql.Literal(str(status)) for status in statuses))
        with self._pool.connection() as conn:  # orders_sniping, in placement order
            rows = conn.execute(query, (_mints(base, quote), base, quote)).fetchall()
        return [_order(r) for r in rows]

    def ahead_in_line(self, order: Order) -> bool:
        return self._sniper_placed_before(order, [Status.TRIGGERED, Status.ROUTING, Status.BUILDING,
                                                  Status.SUBMITTED])

    def resting_ahead(self, order: Order) -> bool:
        return self._sniper_placed_before(order, [Status.OPEN])

    def _sniper_placed_before(self, order: Order, statuses: list[Status]) -> bool:
        # The statuses are written into the statement, not passed: only literal values let the planner see that
        # the partial index orders_sniping covers the query.
        query = sql.SQL("""SELECT EXISTS (SELECT 1 FROM orders WHERE type = 'sniper' AND token_out = %s
                           AND token_in = %s AND status IN ({}) AND (created_at, id) < (%s, %s)) AS found""").format(
            sql.SQL(", ").join(sql.Literal(str(status)) for status in statuses))
        with self._pool.connection() as conn:  # orders_sniping
            row = conn.execute(query, (order.token_out.mint, order.token_in.symbol, order.created_at,
                                       order.id)).fetchone()
        return bool(row and row["found"])

    def next_in_line(self, token_in: str, target_mint: str) -> Order | None:
        with self._pool.connection() as conn:  # orders_sniping
            row = conn.execute(
                """SELECT * FROM orders WHERE type = 'sniper' AND token_out = %s AND token_in = %s
                   AND status = 'triggered' ORDER BY created_at, id LIMIT 1""",
                (target_mint, token_in),
            ).fetchone()
        return None if row is None else _order(row)

    def resting(self, token_in: str, token_out: str, key_bound: Decimal, limit: int) -> list[Order]:
        with self._pool.connection() as conn:  # orders_resting: only what the price may satisfy, best first
            rows = conn.execute(
                """SELECT * FROM orders WHERE status = 'open' AND token_in = %s AND token_out = %s
                   AND trigger_key <= %s ORDER BY trigger_key, created_at LIMIT %s""",
                (token_in, token_out, key_bound, limit),
            ).fetchall()
        return [_order(r) for r in rows]

    def claiming(self, base: str, quote: str) -> list[Order]:
        with self._pool.connection() as conn:  # orders_claiming
            rows = conn.execute(
                """SELECT * FROM orders WHERE type = 'limit' AND status IN ('triggered', 'routing', 'building')
                   AND ((token_in = %s AND token_out = %s) OR (token_in = %s AND token_out = %s))""",
                (base, quote, quote, base),
            ).fetchall()
        return [_order(r) for r in rows] + self.snipers(
            base, quote, (Status.TRIGGERED, Status.ROUTING, Status.BUILDING))

    def expiring(self, before: datetime, limit: int = 100) -> list[Order]:
        with self._pool.connection() as conn:  # orders_expiring
            rows = conn.execute(
                """SELECT * FROM orders WHERE expires_at IS NOT NULL
                   AND status NOT IN ('confirmed', 'failed', 'cancelled', 'expired') AND status = 'open'
                   AND expires_at <= %s ORDER BY expires_at LIMIT %s""",
                (before, limit),
            ).fetchall()
        return [_order(r) for r in rows]

    def finished_since(self, since: datetime, limit: int = 500) -> list[Order]:
        """Orders that reached a final status after ``since``, newest first."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT * FROM orders
                   WHERE status IN ('confirmed', 'failed', 'cancelled', 'expired') AND updated_at >= %s
                   ORDER BY updated_at DESC LIMIT %s""",
                (since, limit),
            ).fetchall()
        return [_order(r) for r in rows]

    def record_sweep(self, order_id: str, expected_seq: int, at: datetime) -> bool:
        """Counts a sweep of the order unless it changed since it was read."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "UPDATE orders SET sweeps = sweeps + 1, updated_at = %s WHERE id = %s AND seq = %s RETURNING id",
                (at, order_id, expected_seq),
            ).fetchone()
        return row is not None

    def save_decision(self, order_id: str, decision: RoutingDecision, at: datetime) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO routing_decisions (order_id, chosen, reason, quotes, decided_at, legs, gain_bps)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (order_id) DO UPDATE
                   SET chosen = EXCLUDED.chosen, reason = EXCLUDED.reason, quotes = EXCLUDED.quotes,
                       decided_at = EXCLUDED.decided_at, legs = EXCLUDED.legs, gain_bps = EXCLUDED.gain_bps""",
                _decision_row(order_id, decision, at),
            )

    def account_orders(self, user_id: str, since: datetime | None, limit: int = 1000) -> dict[str, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT o.id, o.seq,
                          (SELECT min(e.seq) FROM order_events e WHERE e.order_id = o.id AND e.at >= %(since)s)
                              AS first_since
                   FROM orders o
                   WHERE o.user_id = %(user)s
                     AND (o.status <> ALL(%(final)s) OR (%(since)s::timestamptz IS NOT NULL
                                                         AND o.updated_at >= %(since)s))
                   ORDER BY o.updated_at DESC LIMIT %(limit)s""",
                {"user": user_id, "since": since, "final": [str(s) for s in FINAL_STATUSES], "limit": limit},
            ).fetchall()
        if since is None:
            return {str(r["id"]): 0 for r in rows}
        return {str(r["id"]): r["seq"] if r["first_since"] is None else r["first_since"] - 1 for r in rows}

    def decision(self, order_id: str) -> RecordedDecision | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT chosen, reason, quotes, decided_at, legs, gain_bps FROM routing_decisions WHERE order_id = %s",
                (order_id,)
            ).fetchone()
        if row is None:
            return None
        legs = tuple(RouteLeg(_read_quote(leg), Decimal(leg["percent"]), leg["route"]) for leg in row["legs"] or ())
        return RecordedDecision(row["chosen"], row["reason"], tuple(_read_quote(q) for q in row["quotes"]),
                                row["decided_at"], legs, row["gain_bps"])
