import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from chalicelib.adapters.postgres import PostgresOrders, connect_pool, migrate
from chalicelib.bootstrap import learn_listings_from
from chalicelib.domain.limit_orders import TimeInForce, limit_terms
from chalicelib.domain.markets import LISTED_PAIRS, launched_meteora_pool, launched_raydium_pool
from chalicelib.domain.orders import Order, OrderEvent, OrderType, Status, transaction_signature
from chalicelib.domain.routing import RecordedDecision, RoutingDecision, VenueQuote, choose_route
from chalicelib.domain.sniper_orders import Conditions, SniperTerms
from chalicelib.domain.tokens import TOKENS, Token, TokenListing, new_mint_address
from chalicelib.domain.transactions import RouteOrder
from chalicelib.domain.venues import ListingConflict, SlippageExceeded, SwapRejected, SwapRequest
from chalicelib.services.ports import Transition
from tests.fakes import pool_quotes


def new_order(orders: PostgresOrders) -> Order:
    now = datetime.now(UTC)
    order = Order(str(uuid.uuid4()), "alice", OrderType.MARKET, TOKENS["SOL"], TOKENS["USDC"], 10**9, 50,
                  Status.PENDING, 1, now, now)
    orders.add(order, OrderEvent(order.id, 1, Status.PENDING, now, {"amountIn": "1"}))
    return order


def test_migrations_are_idempotent(db):
    assert migrate(db) == []


def test_without_prepared_statements_repeated_queries_leave_none_on_the_server(servers, db):
    """As the functions run behind RDS Proxy, where a prepared statement would pin the session."""
    for prepared, expected in ((False, 0), (True, 1)):
        with connect_pool(servers.database_url, max_size=1, prepared_statements=prepared) as pool:
            orders = PostgresOrders(pool)
            for _ in range(8):  # psycopg prepares a query the 5th time it runs, unless told not to
                orders.get(str(uuid.uuid4()))
            with pool.connection() as conn:
                count = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"]
            assert count == expected


def test_an_order_and_its_events_round_trip(db):
    orders = PostgresOrders(db)
    order = new_order(orders)
    stored = orders.get(order.id)
    assert stored.amount_in == 10**9 and stored.status is Status.PENDING and stored.token_in.symbol == "SOL"
    assert [e.seq for e in orders.events(order.id)] == [1]
    assert orders.get(str(uuid.uuid4())) is None


def test_a_limit_orders_terms_round_trip_and_a_partial_fill_is_kept(db):
    orders = PostgresOrders(db)
    now = datetime.now(UTC)
    terms = limit_terms("USDC", "SOL", 1520 * 10**6, TimeInForce.GTD, now, limit_price=Decimal("152.123456"),
                        expires_at=now + timedelta(hours=1))
    order = Order(str(uuid.uuid4()), "alice", OrderType.LIMIT, TOKENS["USDC"], TOKENS["SOL"], 1520 * 10**6, None,
                  Status.PENDING, 1, now, now, limit=terms)
    orders.add(order, OrderEvent(order.id, 1, Status.PENDING, now, {}))
    stored = orders.get(order.id)
    assert stored.limit == terms and stored.slippage_bps is None and stored.type is OrderType.LIMIT
    with db.connection() as conn:
        key = conn.execute("SELECT trigger_key FROM orders WHERE id = %s", (order.id,)).fetchone()["trigger_key"]
    assert key == Decimal("-152.123456")  # a buyer: the highest price sorts first
    orders.transition(order.id, Status.PENDING, Status.ROUTING, now, {}, fill_amount_in=700 * 10**6)
    assert orders.get(order.id).swap_amount_in == 700 * 10**6


def test_only_one_of_two_racing_transitions_wins(db):
    orders = PostgresOrders(db)
    order = new_order(orders)
    barrier = threading.Barrier(8)

    def attempt(_):
        barrier.wait()
        return orders.transition(order.id, Status.PENDING, Status.ROUTING, datetime.now(UTC), {})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert sum(r is not None for r in results) == 1
    assert [(e.seq, e.status) for e in orders.events(order.id)] == [(1, Status.PENDING), (2, Status.ROUTING)]


def test_transition_stores_fields_and_refuses_unknown_ones(db):
    orders = PostgresOrders(db)
    order = new_order(orders)
    orders.transition(order.id, Status.PENDING, Status.FAILED, datetime.now(UTC), {"reason": "x"},
                      failure_reason="x")
    assert orders.get(order.id).failure_reason == "x"
    with pytest.raises(ValueError):
        orders.transition(order.id, Status.FAILED, Status.CONFIRMED, datetime.now(UTC), {}, user_id="eve")


def test_a_routing_decision_reads_back_as_it_was_decided_and_as_rows_stored_before_read(db, dex):
    orders = PostgresOrders(db)
    order = new_order(orders)
    assert orders.decision(order.id) is None
    quotes = pool_quotes(dex, "SOL", "USDC", 10**9 + 1)  # a base unit past a round amount, so nothing rounds unseen
    unavailable = VenueQuote("meteora", "meteora-sol-usdc", "SOL", "USDC", 10**9 + 1, 0, 0, Decimal(0), "paused")
    decision = RoutingDecision(quotes[0], (*quotes, unavailable), "the better output")
    decided_at = datetime.now(UTC)
    orders.save_decision(order.id, decision, decided_at)
    assert orders.decision(order.id) == RecordedDecision(quotes[0].venue, "the better output",
                                                         (*quotes, unavailable), decided_at)
    with db.connection() as conn:  # what the rows written so far hold, which the API showed as it is
        stored = conn.execute("SELECT quotes FROM routing_decisions WHERE order_id = %s", (order.id,)).fetchone()
    assert stored["quotes"][-1] == {"venue": "meteora", "poolId": "meteora-sol-usdc", "tokenIn": "SOL",
                                    "tokenOut": "USDC", "amountIn": "1.000000001", "amountOut": "0", "fee": "0",
                                    "priceImpactPct": "0", "error": "paused"}


def test_quotes_route_and_a_swap_moves_the_shared_pool(dex):
    quotes = pool_quotes(dex, "SOL", "USDC", 10**9)
    decision = choose_route(quotes)
    before = {p.id: p for p in dex.pools("SOL", "USDC")}[decision.chosen.pool_id]
    signature = transaction_signature(str(uuid.uuid4()))
    receipt = dex.swap(signature, "memo-1", decision.chosen.pool_id, "SOL", "USDC", 10**9, 1)
    after = {p.id: p for p in dex.pools("SOL", "USDC")}[decision.chosen.pool_id]
    assert receipt.amount_out > 0
    assert after != before
    assert dex.swap_status(signature) == receipt


def test_a_signature_executes_once_even_when_sent_concurrently(dex):
    pool_id = "raydium-sol-usdc"
    signature = transaction_signature(str(uuid.uuid4()))
    memo = str(uuid.uuid4())
    with ThreadPoolExecutor(6) as pool:
        receipts = list(pool.map(lambda _: dex.swap(signature, memo, pool_id, "SOL", "USDC", 10**9, 1), range(6)))
    assert len({r.slot for r in receipts}) == 1
    assert len(dex.swaps_for(memo)) == 1


def test_concurrent_swaps_on_one_pool_apply_one_after_another(dex):
    pool_id = "raydium-sol-usdt"
    before = {p.id: p for p in dex.pools()}[pool_id]
    memo = str(uuid.uuid4())

    def swap(n):
        return dex.swap(transaction_signature(f"{memo}-{n}"), memo, pool_id, "SOL", "USDT", 10**9, 1)

    with ThreadPoolExecutor(10) as pool:
        receipts = list(pool.map(swap, range(20)))
    after = {p.id: p for p in dex.pools()}[pool_id]
    assert after.reserve_base == before.reserve_base + 20 * 10**9
    assert after.reserve_quote == before.reserve_quote - sum(r.amount_out for r in receipts)
    assert len(dex.swaps_for(memo)) == 20


def test_a_swap_below_its_minimum_fails_and_changes_nothing(dex):
    pool_id = "meteora-jup-usdc"
    before = {p.id: p for p in dex.pools()}[pool_id]
    memo = str(uuid.uuid4())
    with pytest.raises(SlippageExceeded):
        dex.swap(transaction_signature(memo), memo, pool_id, "JUP", "USDC", 10**6, 10**12)
    assert {p.id: p for p in dex.pools()}[pool_id] == before
    assert dex.swaps_for(memo) == []
    # The failed transaction is kept: the same signature fails again, even with a minimum it would now meet.
    with pytest.raises(SlippageExceeded):
        dex.swap(transaction_signature(memo), memo, pool_id, "JUP", "USDC", 10**6, 0)
    assert dex.swaps_for(memo) == [] and dex.swap_status(transaction_signature(memo)) is None


def test_an_expired_signature_is_refused(dex):
    from datetime import timedelta

    memo = str(uuid.uuid4())
    with pytest.raises(SwapRejected, match="expired"):
        dex.swap(transaction_signature(memo), memo, "raydium-sol-usdc", "SOL", "USDC", 10**9, 0,
                 valid_until=datetime.now(UTC) - timedelta(seconds=1))
    assert dex.swaps_for(memo) == []


def test_stuck_orders_are_found_and_a_sweep_is_counted_once(db):
    from datetime import timedelta

    orders = PostgresOrders(db)
    order = new_order(orders)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert order.id in {o.id for o in orders.stuck(later, limit=1000)}
    assert order.id not in {o.id for o in orders.stuck(order.created_at - timedelta(seconds=1))}
    assert orders.record_sweep(order.id, order.seq, later)
    assert not orders.record_sweep(order.id, order.seq - 1, later)  # a stale read changes nothing
    assert orders.get(order.id).sweeps == 1


def _resting_sell(orders: PostgresOrders, price: str, amount: int = 10**9) -> Order:
    now = datetime.now(UTC)
    terms = limit_terms("JUP", "USDC", amount, TimeInForce.GTC, now, limit_price=Decimal(price))
    order = Order(str(uuid.uuid4()), "alice", OrderType.LIMIT, TOKENS["JUP"], TOKENS["USDC"], amount, None,
                  Status.OPEN, 1, now, now, limit=terms)
    orders.add(order, OrderEvent(order.id, 1, Status.OPEN, now, {}))
    return order


def test_resting_orders_are_read_through_the_index_best_price_first_and_only_up_to_the_bound(db):
    orders = PostgresOrders(db)
    with db.connection() as conn:  # this pair's orders from other tests would blur the order of the result
        conn.execute("UPDATE orders SET status = 'cancelled' WHERE token_in = 'JUP' AND status = 'open'")
    assert not orders.any_resting("USDC", "JUP")  # either way round, nothing rests on the pair
    prices = ["0.95", "0.90", "0.90", "1.20", "0.80"]
    placed = [_resting_sell(orders, p) for p in prices]
    assert orders.any_resting("JUP", "USDC") and orders.any_resting("USDC", "JUP")
    found = orders.resting("JUP", "USDC", Decimal("0.95"), 10)
    assert [o.id for o in found] == [placed[4].id, placed[1].id, placed[2].id, placed[0].id]  # price, then time
    assert found[0].limit.min_amount_out == 800_000_000  # 1,000 JUP at 0.80
    assert [o.id for o in orders.resting("JUP", "USDC", Decimal("0.95"), 2)] == [placed[4].id, placed[1].id]
    plan = _plan_at_scale(db, """SELECT * FROM orders WHERE status = 'open' AND token_in = 'JUP'
                                 AND token_out = 'USDC' AND trigger_key <= 0.95 ORDER BY trigger_key, created_at
                                 LIMIT 10""")
    assert "orders_resting" in plan, plan  # never a scan of every open order
    orders.transition(placed[4].id, Status.OPEN, Status.TRIGGERED, datetime.now(UTC), {})
    assert [o.id for o in orders.claiming("JUP", "USDC")] == [placed[4].id]
    assert placed[4].id not in [o.id for o in orders.resting("JUP", "USDC", Decimal("0.95"), 10)]


def _plan_at_scale(db, query: str, params: tuple = ()) -> str:
    """The query's plan with 5,000 more orders resting on another pair (rolled back after): on a table of a few
    rows every index costs the same, and the planner's pick among them says nothing of what a full table gets."""
    with db.connection() as conn, conn.transaction() as transaction:
        conn.execute(
            """INSERT INTO orders (id, user_id, type, token_in, token_out, amount_in, status, seq, created_at,
                                   updated_at, trigger_key)
               SELECT gen_random_uuid(), 'bulk', 'limit', 'SOL', 'USDT', 1, 'open', 1, now(), now(), random()
               FROM generate_series(1, 5000)""")
        conn.execute("ANALYZE orders")
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + query, params).fetchall())
        raise psycopg.Rollback(transaction)
    return plan


def test_a_pairs_lock_lets_one_evaluation_in_at_a_time_across_connections(db):
    from chalicelib.adapters.postgres import PostgresPairLocks

    locks, inside, most = PostgresPairLocks(db), [], []
    guard = threading.Lock()

    def evaluate(_):
        with locks.hold("SOL/USDC"):
            with guard:
                inside.append(1)
                most.append(len(inside))
            threading.Event().wait(0.05)
            with guard:
                inside.pop()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(evaluate, range(4)))
    assert max(most) == 1
    with locks.hold("SOL/USDC"), locks.hold("JUP/USDC"):  # another pair's lock is another lock
        pass


# Launches and snipers ---------------------------------------------------------------------------------------------

def _new_listing(dex, decimals=6, revoked=False) -> TokenListing:
    symbol = "T" + uuid.uuid4().hex[:8].upper()
    return dex.list_token(TokenListing(Token(symbol, new_mint_address(), decimals), revoked, revoked))


def test_the_registry_holds_the_genesis_tokens_and_refuses_a_taken_symbol_in_any_case_or_mint(dex):
    assert {t.token.symbol for t in dex.listings()} >= {"SOL", "USDC", "USDT", "JUP"}
    assert dex.listing("USDC").token == TOKENS["USDC"] and not dex.listing("USDC").mint_authority_revoked
    listed = _new_listing(dex)
    assert dex.listing(listed.token.mint) == listed
    with pytest.raises(ListingConflict, match="in any case"):
        dex.list_token(TokenListing(Token(listed.token.symbol.lower(), new_mint_address(), 6), True, True))
    with pytest.raises(ListingConflict, match="mint"):
        dex.list_token(TokenListing(Token("OTHER" + listed.token.symbol[-4:], listed.token.mint, 6), True, True))
    assert dex.revoke(listed.token.symbol, "freeze").freeze_authority_revoked
    assert dex.revoke("NOSUCH", "mint") is None


def test_a_launched_pool_refuses_swaps_until_it_opens_then_trades_and_burns_its_lp(dex):
    token = _new_listing(dex).token
    opens = int(datetime.now(UTC).timestamp()) + 3600
    pool = dex.open_pool(launched_raydium_pool(token.symbol, "USDC", 10**12, 2 * 10**9, opens))
    assert (token.symbol, "USDC") in dex.pairs()
    (quote,) = pool_quotes(dex, "USDC", token.symbol, 10**6)
    assert "not open yet" in quote.error
    with pytest.raises(SwapRejected, match="not open yet"):
        dex.swap(f"early-{uuid.uuid4()}", "early", pool.id, "USDC", token.symbol, 10**6, 0)
    with pytest.raises(ListingConflict, match="already"):
        dex.open_pool(launched_raydium_pool(token.symbol, "USDC", 1, 1, 0))
    with pytest.raises(ListingConflict, match="listed as"):
        dex.open_pool(launched_meteora_pool("USDC", token.symbol, 10**9, 10**9, 25, 0))
    assert dex.burn_lp(pool.id).lp_burned and dex.pools("USDC", token.symbol)[0].open_time == opens
    now_open = dex.open_pool(launched_meteora_pool(token.symbol, "USDC", 10**12, 2 * 10**9, 25, 0))
    receipt = dex.swap(f"open-{uuid.uuid4()}", "buyer", now_open.id, "USDC", token.symbol, 10**6, 0)
    assert receipt.amount_out > 0


def _sniper(orders, target: Token, at: datetime, status: Status = Status.OPEN) -> Order:
    order = Order(str(uuid.uuid4()), "alice", OrderType.SNIPER, TOKENS["USDC"], target, 10**7, 500, status, 1, at, at,
                  sniper=SniperTerms(at + timedelta(hours=1), Decimal("0.002"), Conditions(Decimal("10"), True, False,
                                                                                           True), 5))
    orders.add(order, OrderEvent(order.id, 1, status, at, {}))
    return order


@pytest.fixture
def learning_from(dex):
    """This test's venues as where the process learns listings (as the engine's wiring does)."""
    learn_listings_from(dex)
    yield dex
    TOKENS.learn_with(lambda key: None)
    LISTED_PAIRS.learn_with(list)


def test_snipers_are_stored_by_their_targets_mint_and_read_in_placement_order(db, learning_from):
    dex = learning_from
    orders = PostgresOrders(db)
    mint = new_mint_address()
    now = datetime.now(UTC)
    early = _sniper(orders, Token.unlisted(mint), now)
    stored = orders.get(early.id)
    assert stored.sniper == early.sniper and stored.token_out == Token.unlisted(mint)
    token = dex.list_token(TokenListing(Token("S" + uuid.uuid4().hex[:8].upper(), mint, 6), True, True)).token
    assert orders.get(early.id).token_out == token  # listed since: read back as the token
    later = _sniper(orders, token, now + timedelta(seconds=1))
    assert orders.any_resting(token.symbol, "USDC")
    assert [o.id for o in orders.snipers(token.symbol, "USDC")] == [early.id, later.id]
    assert not orders.ahead_in_line(later) and orders.next_in_line("USDC", mint) is None
    assert orders.resting_ahead(later) and not orders.resting_ahead(early)  # the earlier one still rests
    orders.transition(early.id, Status.OPEN, Status.TRIGGERED, now, {})
    orders.transition(later.id, Status.OPEN, Status.TRIGGERED, now, {})
    assert orders.ahead_in_line(orders.get(later.id)) and not orders.ahead_in_line(orders.get(early.id))
    assert not orders.resting_ahead(orders.get(later.id))  # triggered: in line, no longer resting
    assert orders.next_in_line("USDC", mint).id == early.id
    assert {o.id for o in orders.claiming(token.symbol, "USDC")} == {early.id, later.id}
    stuck = {o.id for o in orders.stuck(now + timedelta(hours=1), 1000)}
    assert early.id in stuck and later.id not in stuck  # it waits for its turn: the one ahead is the stuck one
    plan = _plan_at_scale(db, """SELECT * FROM orders WHERE type = 'sniper'
                                 AND status IN ('triggered', 'routing', 'building') AND token_out = ANY(%s)
                                 AND token_in IN ('USDC', %s) ORDER BY created_at, id""", ([mint], token.symbol))
    assert "orders_sniping" in plan, plan  # a pool event reads the pair's snipers, never every order
    assert [o.id for o in orders.expiring(now + timedelta(hours=2)) if o.sniper] == []  # triggered: not resting


# Multi-leg transactions (issue 19) ---------------------------------------------------------------------------------

def _pool_states(dex, *pool_ids):
    return {p.id: p.to_state() for p in dex.pools() if p.id in pool_ids}


def test_a_hop_and_a_split_execute_as_one_transaction_with_their_legs(dex):
    hop = [RouteOrder(1_000 * 10**6, (("raydium-jup-usdc", "JUP", "USDC"), ("meteora-sol-usdc", "USDC", "SOL")))]
    receipt = dex.swap_route(f"hop-{uuid.uuid4()}", "hop", hop, 1)
    first, second = receipt.legs
    assert (first.token_in, first.token_out, second.token_in, second.token_out) == ("JUP", "USDC", "USDC", "SOL")
    assert second.amount_in == first.amount_out and receipt.amount_out == second.amount_out
    assert (receipt.pool_id, receipt.token_in, receipt.token_out, receipt.amount_in) == (
        "raydium-jup-usdc", "JUP", "SOL", 1_000 * 10**6)
    split = [RouteOrder(900 * 10**9, (("meteora-sol-usdc", "SOL", "USDC"),)),
             RouteOrder(100 * 10**9, (("raydium-sol-usdc", "SOL", "USDC"),))]
    receipt = dex.swap_route(f"split-{uuid.uuid4()}", "split", split, 1)
    assert [leg.pool_id for leg in receipt.legs] == ["meteora-sol-usdc", "raydium-sol-usdc"]
    assert receipt.amount_in == 1_000 * 10**9 and receipt.amount_out == sum(leg.amount_out for leg in receipt.legs)
    assert receipt.fee == sum(leg.fee for leg in receipt.legs)
    assert dex.swap_status(receipt.signature) == receipt  # the ledger keeps the legs


def test_a_transaction_below_its_minimum_changes_no_pool_and_its_signature_stays_refused(dex):
    pools = ("raydium-jup-usdc", "meteora-sol-usdc")
    before = _pool_states(dex, *pools)
    routes = [RouteOrder(1_000 * 10**6, (("raydium-jup-usdc", "JUP", "USDC"), ("meteora-sol-usdc", "USDC", "SOL")))]
    signature = f"short-{uuid.uuid4()}"
    with pytest.raises(SlippageExceeded):
        dex.swap_route(signature, "short", routes, 10**18)
    assert _pool_states(dex, *pools) == before  # neither leg landed
    with pytest.raises(SlippageExceeded):
        dex.swap_route(signature, "short", routes, 1)  # the signature failed: it never executes afterwards
    assert dex.swap_status(signature) is None


def test_crossing_transactions_neither_deadlock_nor_run_twice(dex):
    """Two routes over the same two pools in opposite orders, many at once: every pool is locked in id order."""
    there = [RouteOrder(1_000 * 10**6, (("raydium-sol-usdc", "USDC", "SOL"), ("meteora-sol-usdt", "SOL", "USDT")))]
    back = [RouteOrder(1_000 * 10**6, (("meteora-sol-usdt", "USDT", "SOL"), ("raydium-sol-usdc", "SOL", "USDC")))]
    counts = {p: r for p, r in _swap_counts(dex).items() if p in ("raydium-sol-usdc", "meteora-sol-usdt")}
    signatures = [f"cross-{uuid.uuid4()}" for _ in range(12)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(lambda n: dex.swap_route(signatures[n // 2], "cross", there if n % 4 < 2 else back,
                                                          1), range(24)))  # each signature sent twice
    assert len({r.signature for r in receipts}) == 12
    assert all(receipts[n] == receipts[n + 1] for n in range(0, 24, 2))  # the second send got the first's receipt
    after = _swap_counts(dex)
    assert all(after[p] == counts[p] + 12 for p in counts)  # each transaction moved each pool once


def _swap_counts(dex) -> dict[str, int]:
    with dex._db.connection() as conn:
        return {r["id"]: r["swaps"] for r in conn.execute("SELECT id, swaps FROM dex.pools").fetchall()}


@pytest.mark.parametrize("token_in,token_out", [("SOL", "USDC"), ("JUP", "SOL"), ("USDC", "USDT"), ("SOL", "JUP"),
                                                ("USDT", "JUP"), ("USDC", "SOL")])
def test_the_venues_read_the_pools_of_every_route_of_at_most_two_hops_and_no_other(dex, token_in, token_out):
    from chalicelib.domain.route_search import candidate_routes

    every = dex.pools()
    expected = sorted({p.id for route in candidate_routes(every, token_in, token_out) for p in route.pools})
    assert [p.id for p in dex.route_pools(token_in, token_out)] == expected
    assert expected or (token_in, token_out) == ("USDT", "JUP")  # three hops apart: no route


def test_an_orders_route_legs_and_decision_round_trip(db):
    from chalicelib.domain.markets import genesis_pools
    from chalicelib.domain.routing import decide_route
    from chalicelib.domain.venues import LegReceipt

    orders = PostgresOrders(db)
    order = new_order(orders)
    decision = decide_route(genesis_pools(), "SOL", "USDC", 5_000 * 10**9, 0)
    assert not decision.is_single
    orders.save_decision(order.id, decision, datetime.now(UTC))
    legs = (LegReceipt("meteora-sol-usdc", "meteora", "SOL", "USDC", 4_550 * 10**9, 7 * 10**11, 9),
            LegReceipt("raydium-sol-usdc", "raydium", "SOL", "USDC", 450 * 10**9, 6 * 10**10, 8))
    assert orders.transition(order.id, Status.PENDING, Status.ROUTING, datetime.now(UTC), {},
                             route=decision.routes(), legs=legs) is not None
    stored = orders.get(order.id)
    assert stored.route == decision.routes() and stored.legs == legs
    recorded = orders.decision(order.id)
    assert recorded.legs == decision.route_legs and recorded.gain_bps == decision.gain_bps
    assert recorded.venue == "raydium+meteora" or recorded.venue == "meteora+raydium"
    assert orders.transition(order.id, Status.ROUTING, Status.BUILDING, datetime.now(UTC), {}, route=None) is not None
    assert orders.get(order.id).route is None  # rebuilt on one pool: the route is cleared


def test_orders_pass_through_routing_and_building_to_submitted_in_one_statement_with_their_decisions(db):
    from chalicelib.domain.markets import genesis_pools
    from chalicelib.domain.routing import decide_route
    from chalicelib.services.ports import Passed

    orders = PostgresOrders(db)
    split, single, taken = (new_order(orders) for _ in range(3))
    split_decision = decide_route(genesis_pools(), "SOL", "USDC", 5_000 * 10**9, 0)
    single_decision = decide_route(genesis_pools(), "SOL", "USDC", 10**9, 0, single=True)
    assert not split_decision.is_single and single_decision.is_single
    orders.transition(taken.id, Status.PENDING, Status.ROUTING, datetime.now(UTC), {"by": "another delivery"})
    other_decision_at = datetime(2026, 1, 1, tzinfo=UTC)
    orders.save_decision(taken.id, single_decision, other_decision_at)
    started, routed, at = (datetime(2026, 11, 30, 12, 0, 0, n * 1000, tzinfo=UTC) for n in (1, 2, 3))

    def passage(order, decision):
        signature = transaction_signature(order.id)
        return Transition(order.id, Status.PENDING, Status.SUBMITTED, {"attempt": 1}, 1,
                          {"venue": decision.chosen.venue, "tx_signature": signature, "min_out": 7, "attempts": 1},
                          via=(Passed(Status.ROUTING, {}, started), Passed(Status.BUILDING, {"n": 2}, routed)),
                          decision=decision)

    events = orders.transition_many([passage(split, split_decision), passage(single, single_decision),
                                     passage(taken, split_decision)], at)
    assert events[0] == OrderEvent(split.id, 4, Status.SUBMITTED, at, {"attempt": 1}) and events[2] is None
    assert orders.events(split.id) == [orders.events(split.id)[0],
                                       OrderEvent(split.id, 2, Status.ROUTING, started, {}),
                                       OrderEvent(split.id, 3, Status.BUILDING, routed, {"n": 2}),
                                       OrderEvent(split.id, 4, Status.SUBMITTED, at, {"attempt": 1})]
    stored = orders.get(split.id)
    assert (stored.status, stored.seq, stored.attempts, stored.min_out, stored.updated_at) == (
        Status.SUBMITTED, 4, 1, 7, at)
    recorded = orders.decision(split.id)
    assert (recorded.legs, recorded.gain_bps, recorded.quotes, recorded.decided_at) == (
        split_decision.route_legs, split_decision.gain_bps, split_decision.quotes, routed)
    assert orders.decision(single.id).venue == single_decision.chosen.venue
    assert [e.status for e in orders.events(single.id)] == [Status.PENDING, Status.ROUTING, Status.BUILDING,
                                                           Status.SUBMITTED]
    # The order another delivery had moved on keeps that delivery's status, events and decision.
    assert [e.status for e in orders.events(taken.id)] == [Status.PENDING, Status.ROUTING]
    assert orders.decision(taken.id).decided_at == other_decision_at


def test_a_client_order_id_is_unique_per_user_and_a_taken_one_stores_nothing(db):
    import dataclasses

    from chalicelib.services.ports import ClientOrderIdTaken

    orders = PostgresOrders(db)
    now = datetime.now(UTC)
    cid = f"c-{uuid.uuid4().hex[:8]}"

    def order(user: str) -> Order:
        return Order(str(uuid.uuid4()), user, OrderType.MARKET, TOKENS["SOL"], TOKENS["USDC"], 10**9, 50,
                     Status.PENDING, 1, now, now, client_order_id=cid)

    first = order("alice")
    assert orders.add(first, OrderEvent(first.id, 1, Status.PENDING, now, {}))
    assert orders.add(first, OrderEvent(first.id, 1, Status.PENDING, now, {})) is False  # the same order again
    second = order("alice")
    with pytest.raises(ClientOrderIdTaken) as taken:
        orders.add(second, OrderEvent(second.id, 1, Status.PENDING, now, {}))
    assert taken.value.order_id == first.id and orders.get(second.id) is None and orders.events(second.id) == []
    bobs = order("bob")
    assert orders.add(bobs, OrderEvent(bobs.id, 1, Status.PENDING, now, {}))
    assert orders.by_client_id("alice", cid).id == first.id and orders.by_client_id("bob", cid).id == bobs.id
    assert [o.id for o in orders.page("alice", [], [], None, 10, client_order_id=cid)] == [first.id]
    unnamed = dataclasses.replace(order("alice"), client_order_id=None)
    assert orders.add(unnamed, OrderEvent(unnamed.id, 1, Status.PENDING, now, {}))  # no id: never a conflict


def test_an_account_stream_follows_unfinished_orders_and_those_changed_since(db):
    orders = PostgresOrders(db)
    user = f"acct-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC)

    def placed(at: datetime) -> Order:
        order = Order(str(uuid.uuid4()), user, OrderType.MARKET, TOKENS["SOL"], TOKENS["USDC"], 10**9, 50,
                      Status.PENDING, 1, at, at)
        orders.add(order, OrderEvent(order.id, 1, Status.PENDING, at, {}))
        return order

    old_done = placed(start - timedelta(hours=1))
    orders.transition(old_done.id, Status.PENDING, Status.FAILED, start - timedelta(hours=1), {})
    recent_done = placed(start - timedelta(minutes=5))
    orders.transition(recent_done.id, Status.PENDING, Status.ROUTING, start - timedelta(minutes=5), {})
    orders.transition(recent_done.id, Status.ROUTING, Status.FAILED, start + timedelta(seconds=1), {})
    still_open = placed(start - timedelta(hours=2))
    assert orders.account_orders(user, None) == {still_open.id: 0}  # no since: the unfinished ones, from the start
    # Since: each order changed at or after it, seen up to the event before; the unfinished ones up to their last.
    assert orders.account_orders(user, start) == {recent_done.id: 2, still_open.id: 1}
    assert orders.account_orders(user, start - timedelta(minutes=10)) == {recent_done.id: 0, still_open.id: 1}
    assert orders.account_orders(f"nobody-{uuid.uuid4()}", start) == {}


def test_a_pool_keeps_the_slot_of_the_swap_that_last_changed_it(dex):
    before = {s.pool.id: s for s in dex.pool_snapshots(["raydium-jup-usdc", "meteora-jup-usdc"])}
    receipt = dex.swap(f"slot-{uuid.uuid4()}", "slot", "raydium-jup-usdc", "USDC", "JUP", 10**6, 0)
    after = {s.pool.id: s for s in dex.pool_snapshots(["raydium-jup-usdc", "meteora-jup-usdc", "no-such-pool"])}
    assert set(after) == {"raydium-jup-usdc", "meteora-jup-usdc"}
    assert after["raydium-jup-usdc"].slot == receipt.slot > before["raydium-jup-usdc"].slot
    assert after["meteora-jup-usdc"].slot == before["meteora-jup-usdc"].slot
    assert len(dex.pool_snapshots()) == len(dex.pools())


def test_a_slot_runs_its_transactions_in_arrival_order_each_with_its_own_outcome_and_writes_each_pool_once(dex):
    """Issue 21: the swaps that reach the venues together share one locked transaction (one slot), as a chain's."""
    pool_id = "raydium-sol-usdt"
    before, counts = {p.id: p for p in dex.pools()}[pool_id], _swap_counts(dex)
    memo = str(uuid.uuid4())
    one = (RouteOrder(10**9, ((pool_id, "SOL", "USDT"),)),)
    landed = dex.swap_route(f"{memo}-earlier", memo, one, 1)  # a signature executed in an earlier slot
    requests = [SwapRequest(f"{memo}-{n}", memo, one, 1) for n in range(4)]
    requests.insert(2, SwapRequest(f"{memo}-short", memo, one, 10**18))  # below its minimum: refused alone
    requests.append(SwapRequest(f"{memo}-1", memo, one, 1))  # sent twice in the slot: executed once
    requests.append(SwapRequest(f"{memo}-earlier", memo, one, 1))
    requests.append(SwapRequest(f"{memo}-late", memo, one, 1, valid_until=datetime.now(UTC) - timedelta(seconds=1)))
    results = dex.swap_slot(requests)
    receipts = results[:2] + results[3:5]
    assert isinstance(results[2], SlippageExceeded) and isinstance(results[7], SwapRejected)
    assert results[5] == results[1] and results[6] == landed
    assert len({r.slot for r in receipts}) == 1 and receipts[0].slot > landed.slot  # one slot
    outs = [r.amount_out for r in receipts]
    assert outs == sorted(outs, reverse=True) and len(set(outs)) == 4  # each on the state the one before left
    after = {p.id: p for p in dex.pools()}[pool_id]
    assert after.reserve_base == before.reserve_base + 5 * 10**9
    assert after.reserve_quote == before.reserve_quote - landed.amount_out - sum(outs)
    assert _swap_counts(dex)[pool_id] == counts[pool_id] + 5
    assert [dex.swap_status(r.signature) for r in receipts] == receipts
    with pytest.raises(SlippageExceeded):  # the refusal is kept under its signature
        dex.swap_route(f"{memo}-short", memo, one, 0)


def test_many_orders_move_in_one_statement_each_only_from_where_its_step_expects_it(db):
    orders = PostgresOrders(db)
    placed = [new_order(orders) for _ in range(4)]
    assert set(orders.get_many([o.id for o in placed] + [str(uuid.uuid4())])) == {o.id for o in placed}
    orders.transition(placed[1].id, Status.PENDING, Status.ROUTING, datetime.now(UTC), {})  # moved on meanwhile
    at = datetime.now(UTC)
    events = orders.transition_many([Transition(o.id, Status.PENDING, Status.ROUTING, {"n": n}, 1)
                                     for n, o in enumerate(placed)], at)
    assert [e is None for e in events] == [False, True, False, False]
    assert events[0] == OrderEvent(placed[0].id, 2, Status.ROUTING, at, {"n": 0})
    signature = transaction_signature(placed[0].id)
    events = orders.transition_many([
        Transition(placed[0].id, Status.ROUTING, Status.BUILDING, {}, 2,
                   {"venue": "raydium", "min_out": 10**30, "tx_signature": signature, "valid_until": at,
                    "route": (RouteOrder(5, (("p", "SOL", "USDC"),)),)}),
        Transition(placed[2].id, Status.ROUTING, Status.FAILED, {}, 2, {"failure_reason": "no route"}),
        Transition(placed[3].id, Status.ROUTING, Status.FAILED, {}, 1, {"failure_reason": "stale"}),  # seq moved
    ], at)
    assert [None if e is None else e.seq for e in events] == [3, 3, None]
    built, failed = orders.get(placed[0].id), orders.get(placed[2].id)
    assert (built.status, built.min_out, built.tx_signature, built.route[0].amount_in, built.valid_until) == (
        Status.BUILDING, 10**30, signature, 5, at)  # exact past 64 bits, and the time to the microsecond
    assert (failed.status, failed.failure_reason) == (Status.FAILED, "no route")
    assert orders.get(placed[3].id).status is Status.ROUTING
    with pytest.raises(ValueError, match="cannot set"):
        orders.transition_many([Transition(placed[3].id, Status.ROUTING, Status.FAILED, {}, 2, {"user_id": "x"})],
                               at)


def test_the_pools_of_several_pairs_are_read_at_once_as_each_alone(dex):
    pairs = [("SOL", "USDC"), ("USDC", "SOL"), ("JUP", "SOL"), ("USDC", "USDT")]
    together = dex.route_pools_for(pairs)
    assert list(together) == pairs
    assert all([p.id for p in together[pair]] == [p.id for p in dex.route_pools(*pair)] for pair in pairs)
