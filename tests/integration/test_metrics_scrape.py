"""A scrape of /metrics costs the same with 100,000 orders in the database as with none: orders that ended are
folded into running totals once, and a scrape reads only what changed since."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.order_statistics import PostgresOrderStatistics
from chalicelib.adapters.postgres import PostgresOrders, connect_pool
from chalicelib.domain.orders import Status
from chalicelib.services.metrics import LATENCY_BOUNDS
from chalicelib.services.read_models import OrderFigures
from tests.integration.test_api_adapters import _order

pytestmark = pytest.mark.slow

HISTORY = 100_000


def rows_read(conn) -> int:
    """Rows this session's statements read from the order tables, by PostgreSQL's own statistics."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")  # ends a transaction: the counts are flushed
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) AS n FROM pg_stat_user_tables"
        " WHERE relname IN ('orders', 'order_events')").fetchone()
    return int(row["n"])


def add_history(db, orders: int, user: str, ended: datetime) -> None:
    """``orders`` confirmed orders with their two events, written by PostgreSQL itself (seconds, not minutes)."""
    with db.connection() as conn:
        conn.execute(
            """INSERT INTO orders (id, user_id, type, token_in, token_out, amount_in, slippage_bps, status, seq,
                                   venue, created_at, updated_at, attempts)
               SELECT gen_random_uuid(), %(user)s, 'market', 'SOL', 'USDC', 1000000, 50, 'confirmed', 2,
                      CASE WHEN n %% 3 = 0 THEN 'meteora' ELSE 'raydium' END, %(ended)s - interval '2 seconds',
                      %(ended)s, 1 + n %% 2
               FROM generate_series(1, %(orders)s) AS n""", {"user": user, "orders": orders, "ended": ended})
        conn.execute(
            """INSERT INTO order_events (order_id, seq, status, at, data)
               SELECT id, s.seq, s.status, created_at + s.after, '{}'
               FROM orders, (VALUES (1, 'pending', interval '0'),
                                    (2, 'confirmed', interval '2 seconds')) AS s(seq, status, after)
               WHERE user_id = %(user)s""", {"user": user})
        conn.execute("ANALYZE orders")
        conn.execute("ANALYZE order_events")


def test_a_scrape_reads_only_what_changed_since_the_last_however_long_the_history(servers, db):
    statistics_pool = connect_pool(servers.database_url, max_size=1)  # one session: its reads are countable
    statistics = PostgresOrderStatistics(statistics_pool)
    user = f"history-{uuid.uuid4()}"
    add_history(db, HISTORY, user, datetime.now(UTC) - timedelta(days=1))
    before = statistics.figures(LATENCY_BOUNDS)  # folds the whole history, once
    with statistics_pool.connection() as conn:
        start = rows_read(conn)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        again = statistics.figures(LATENCY_BOUNDS)
        timings.append(time.perf_counter() - started)
    with statistics_pool.connection() as conn:
        read = rows_read(conn) - start
    print(f"\n/metrics order figures with {HISTORY:,} orders: {min(timings) * 1000:.1f} ms, {read // 3} rows read")
    assert read < 3 * 2_000, f"three scrapes read {read} rows of the order tables"  # the orders still moving only
    assert again == before and sum(n for (s, _), n in again.counts.items() if s == "confirmed") >= HISTORY

    # An order that moves and ends afterwards is counted once: live first, then folded.
    orders = PostgresOrders(db)
    moving = _order(orders, f"live-{uuid.uuid4()}", datetime.now(UTC))
    live = statistics.figures(LATENCY_BOUNDS)
    assert live.counts[("pending", "")] == before.counts.get(("pending", ""), 0) + 1
    orders.transition(moving.id, Status.PENDING, Status.FAILED, datetime.now(UTC), {})
    ended = statistics.figures(LATENCY_BOUNDS)
    assert ended.counts[("failed", "")] == before.counts.get(("failed", ""), 0) + 1
    assert ended.counts.get(("pending", ""), 0) == before.counts.get(("pending", ""), 0)
    assert statistics.figures(LATENCY_BOUNDS) == ended  # folded by the scrape after it ended: counted once still
    statistics_pool.close()


def test_figures_add_up():
    a = OrderFigures({("confirmed", "raydium"): 2}, {"confirmed": ([1, 2], 3.0, 2)}, retries=1, sweeps=0)
    b = OrderFigures({("confirmed", "raydium"): 1, ("pending", ""): 4}, {"confirmed": ([0, 1], 1.5, 1)}, 2, 1)
    assert a.plus(b) == OrderFigures({("confirmed", "raydium"): 3, ("pending", ""): 4},
                                     {"confirmed": ([1, 3], 4.5, 3)}, 3, 1)
