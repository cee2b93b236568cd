"""The benchmark's final read of every order: a rate-limited read is waited out, any other failure is an error
(before, both were counted as orders lost)."""

import asyncio

import pytest
from aiohttp import web

from infra.bench.load import stored_sequences

EVENTS = {"events": [{"seq": 1, "status": "pending"}, {"seq": 2, "status": "confirmed"}]}


async def _serve(answers: list[web.Response]):
    calls = []

    async def view(request: web.Request) -> web.Response:
        calls.append(request.headers["Authorization"])
        return answers.pop(0) if answers else web.json_response(EVENTS)

    app = web.Application()
    app.router.add_get("/orders/{order_id}", view)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", calls


def test_a_rate_limited_read_is_tried_again_after_retry_after():
    async def scenario():
        throttled = [web.json_response({"title": "Too Many Requests"}, status=429, headers={"Retry-After": "0"})
                     for _ in range(2)]
        runner, url, calls = await _serve(throttled)
        try:
            return await stored_sequences(url, {"order-1": "token-1"}), calls
        finally:
            await runner.cleanup()

    stored, calls = asyncio.run(scenario())
    assert stored == {"order-1": [(1, "pending"), (2, "confirmed")]}
    assert calls == ["Bearer token-1"] * 3


def test_a_read_that_fails_otherwise_is_an_error_not_a_lost_order():
    async def scenario():
        runner, url, _ = await _serve([web.json_response({"title": "Internal"}, status=500)])
        try:
            return await stored_sequences(url, {"order-1": "token-1"})
        finally:
            await runner.cleanup()

    with pytest.raises(RuntimeError, match="answered 500"):
        asyncio.run(scenario())


def test_throttling_past_the_deadline_is_an_error():
    async def scenario():
        runner, url, _ = await _serve([web.json_response({}, status=429, headers={"Retry-After": "5"})])
        try:
            return await stored_sequences(url, {"order-1": "token-1"}, deadline_s=1)
        finally:
            await runner.cleanup()

    with pytest.raises(RuntimeError, match="answered 429"):
        asyncio.run(scenario())


def test_the_load_is_counted_from_postgresqls_statistics_and_the_ledger_lines_written_during_it(servers, tmp_path):
    """Issue 21: transactions per order are PostgreSQL's own count, taken when the load starts and ends."""
    import psycopg

    from infra.bench.accounting import Accounting
    from infra.local.ledger import LAMBDA, Ledger, Tally

    ledger = tmp_path / "ledger.tsv"
    Ledger(str(ledger)).record(LAMBDA, "warm_up", 1)
    accounting = Accounting(ledger, servers.database_url, settle_s=0).start()
    Ledger(str(ledger)).record(LAMBDA, "execute_orders", 5)
    with psycopg.connect(servers.database_url, autocommit=True) as conn:  # closing publishes its counts
        for _ in range(40):
            conn.execute("SELECT 1")
        conn.execute("CREATE TEMP TABLE counted (n int)")
        conn.execute("INSERT INTO counted SELECT generate_series(1, 20)")
    accounting.stop()
    assert accounting.ledger == {(LAMBDA, "execute_orders"): Tally(1, 5.0)}
    counted = accounting.postgres_per_order(1)
    assert 42 <= counted["transactions"] <= 60  # ours, and whatever else the shared server ran meanwhile
    assert counted["row_writes"] >= 20
