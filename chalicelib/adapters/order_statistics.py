"""The order figures ``/metrics`` shows, read from PostgreSQL at a cost that does not grow with the history.

An order that ended is folded, once, into running totals kept in the database (so every function instance shows
the same figures) and marked as folded; a scrape reads those totals and aggregates only the orders still moving and
those that ended since the last fold, each set through a partial index. Marking, rather than a time bound, makes the
fold exact whatever the clocks say and however late a transaction commits.
"""

from __future__ import annotations

from typing import Any

from ..services.read_models import OrderFigures
from .postgres import DbPool

FINAL = "('confirmed', 'failed', 'cancelled', 'expired')"
# After folding this many orders at once (a first scrape of a long history), the planner's statistics still count
# them as unfolded and would have the next scrapes read the whole table; they are refreshed at once.
LARGE_FOLD = 10_000
STILL_MOVING = f"SELECT * FROM orders WHERE status NOT IN {FINAL}"  # orders_unfinished
ENDED_UNFOLDED = f"SELECT * FROM orders WHERE status IN {FINAL} AND NOT folded"  # orders_unfolded


def _aggregate(conn: Any, subset: str, params: dict[str, Any], bounds: tuple[float, ...]) -> OrderFigures:
    """The figures of the orders ``subset`` selects."""
    counts = conn.execute(
        f"SELECT status, coalesce(venue, '') AS venue, count(*) AS n FROM ({subset}) AS o GROUP BY 1, 2", params,
    ).fetchall()
    buckets = ", ".join(f"count(*) FILTER (WHERE seconds <= {float(b)!r}) AS le_{i}" for i, b in enumerate(bounds))
    latencies = conn.execute(
        f"""SELECT status, {buckets}, coalesce(sum(seconds), 0) AS total, count(*) AS n
            FROM (SELECT e.status, extract(epoch FROM min(e.at) - o.created_at)::float8 AS seconds
                  FROM ({subset}) AS o JOIN order_events e ON e.order_id = o.id
                  WHERE e.seq > 1 GROUP BY e.order_id, e.status, o.created_at) AS reached
            GROUP BY status""", params,
    ).fetchall()
    retries = conn.execute(
        f"""SELECT coalesce(sum(greatest(attempts - 1, 0)), 0) AS retries, coalesce(sum(sweeps), 0) AS sweeps
            FROM ({subset}) AS o""", params,
    ).fetchone()
    return OrderFigures(
        counts={(r["status"], r["venue"]): r["n"] for r in counts},
        latencies={r["status"]: ([r[f"le_{i}"] for i in range(len(bounds))], float(r["total"]), r["n"])
                   for r in latencies},
        retries=int(retries["retries"]), sweeps=int(retries["sweeps"]),
    )


class PostgresOrderStatistics:
    def __init__(self, pool: DbPool):
        self._pool = pool

    def figures(self, bounds: tuple[float, ...]) -> OrderFigures:
        with self._pool.connection() as conn:
            with conn.transaction():
                totals = self._fold(conn, bounds)
            # Orders that ended after the fold are not marked yet: counted here, and folded by the next scrape.
            return totals.plus(_aggregate(conn, f"{STILL_MOVING} UNION ALL {ENDED_UNFOLDED}", {}, bounds))

    def _fold(self, conn: Any, bounds: tuple[float, ...]) -> OrderFigures:
        """Adds the orders that ended since the last fold to the totals and marks them; returns the totals. One
        scrape folds at a time: the others wait for its row lock, then find little to do."""
        rollup = conn.execute("SELECT * FROM metrics_rollup FOR UPDATE").fetchone()
        if list(rollup["bounds"]) != list(bounds):  # new buckets: the totals are made again, once
            conn.execute("DELETE FROM metrics_rollup_counts")
            conn.execute("DELETE FROM metrics_rollup_latencies")
            conn.execute("UPDATE orders SET folded = false WHERE folded")
            rollup = {**rollup, "retries": 0, "sweeps": 0}
        ids = [row["id"] for row in conn.execute(f"SELECT id FROM ({ENDED_UNFOLDED}) AS o")]
        totals = OrderFigures(
            counts={(r["status"], r["venue"]): r["n"] for r in conn.execute("SELECT * FROM metrics_rollup_counts")},
            latencies={r["status"]: (list(r["buckets"]), r["total"], r["n"])
                       for r in conn.execute("SELECT * FROM metrics_rollup_latencies")},
            retries=rollup["retries"], sweeps=rollup["sweeps"],
        )
        if not ids and list(rollup["bounds"]) == list(bounds):
            return totals
        totals = totals.plus(_aggregate(conn, "SELECT * FROM orders WHERE id = ANY(%(ids)s)", {"ids": ids}, bounds))
        conn.execute("UPDATE orders SET folded = true WHERE id = ANY(%(ids)s)", {"ids": ids})
        if len(ids) >= LARGE_FOLD:
            conn.execute("ANALYZE orders")
        for (status, venue), n in totals.counts.items():
            conn.execute("INSERT INTO metrics_rollup_counts VALUES (%s, %s, %s) "
                         "ON CONFLICT (status, venue) DO UPDATE SET n = excluded.n", (status, venue, n))
        for status, (buckets, total, n) in totals.latencies.items():
            conn.execute("INSERT INTO metrics_rollup_latencies VALUES (%s, %s, %s, %s) ON CONFLICT (status) "
                         "DO UPDATE SET buckets = excluded.buckets, total = excluded.total, n = excluded.n",
                         (status, buckets, total, n))
        conn.execute("UPDATE metrics_rollup SET bounds = %s, retries = %s, sweeps = %s",
                     (list(bounds), totals.retries, totals.sweeps))
        return totals
