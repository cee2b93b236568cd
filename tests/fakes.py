"""Hand-written fakes of the services' ports, for unit tests without I/O."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.commands import PlaceOrder
from chalicelib.domain.limits import TokenBucket
from chalicelib.domain.markets import PoolSnapshot
from chalicelib.domain.orders import Order, OrderEvent, Status
from chalicelib.domain.pools import Pool, PoolError
from chalicelib.domain.route_search import candidate_routes
from chalicelib.domain.routing import RecordedDecision, RoutingDecision, VenueQuote, quote_pool
from chalicelib.domain.telemetry import Measurement
from chalicelib.domain.tokens import GENESIS_TOKENS, TOKENS, TokenListing
from chalicelib.domain.transactions import RouteOrder, run_transaction
from chalicelib.domain.venues import (
    ListingConflict,
    SlippageExceeded,
    SwapReceipt,
    SwapRejected,
    SwapRequest,
    VenueError,
)
from chalicelib.services import ports
from chalicelib.services.orders import OrderService
from chalicelib.services.ports import Delivery, OrderField
from chalicelib.services.read_models import OrderFigures, PlacedOrder


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)):
        self.current = start

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current

    def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=max(0.0, seconds))


class FakeOrders:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.event_log: dict[str, list[OrderEvent]] = {}
        self.decisions: dict[str, RecordedDecision] = {}
        self.reads = 0  # get_many calls
        self.batched_transitions = 0  # transition_many calls
        self._lock = threading.RLock()

    def ping(self) -> None:
        pass

    def add(self, order: Order, event: OrderEvent) -> bool:
        with self._lock:
            if order.id in self.orders:
                return False
            taken = order.client_order_id and self.by_client_id(order.user_id, order.client_order_id)
            if taken and order.client_order_id:
                raise ports.ClientOrderIdTaken(order.client_order_id, taken.id)
            self.orders[order.id] = order
            self.event_log[order.id] = [event]
            return True

    def get(self, order_id: str) -> Order | None:
        found = self.orders.get(order_id)
        return None if found is None else _read(found)

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        self.reads += 1
        return {order_id: _read(self.orders[order_id]) for order_id in order_ids if order_id in self.orders}

    def transition_many(self, steps: Sequence[ports.Transition], at: datetime) -> list[OrderEvent | None]:
        self.batched_transitions += 1
        with self._lock:  # one transaction, as the adapter's
            return [self._pass(step, at) for step in steps]

    def _pass(self, step: ports.Transition, at: datetime) -> OrderEvent | None:
        order = self.orders[step.order_id]
        if order.status is not step.expected or order.seq != step.expected_seq:
            return None
        for passed in step.via:
            self.transition(step.order_id, order.status, passed.status, passed.at, passed.data)
            order = self.orders[step.order_id]
        if step.decision is not None:
            self.save_decision(step.order_id, step.decision, step.via[-1].at if step.via else at)
        return self.transition(step.order_id, order.status, step.new, at, step.data, order.seq, **step.fields)

    def events(self, order_id: str, after_seq: int = 0) -> list[OrderEvent]:
        return [e for e in self.event_log.get(order_id, []) if e.seq > after_seq]

    def own_events(self, order_id: str, user_id: str, after_seq: int = 0) -> list[OrderEvent] | None:
        order = self.orders.get(order_id)
        return None if order is None or order.user_id != user_id else self.events(order_id, after_seq)

    def transition(self, order_id: str, expected: Status, new: Status, at: datetime, data: dict[str, Any],
                   expected_seq: int | None = None, **fields: OrderField) -> OrderEvent | None:
        with self._lock:
            order = self.orders[order_id]
            if order.status is not expected or (expected_seq is not None and order.seq != expected_seq):
                return None
            event = OrderEvent(order_id, order.seq + 1, new, at, data)
            self.orders[order_id] = dataclasses.replace(order, status=new, seq=event.seq, updated_at=at,
                                                        **fields)  # type: ignore[arg-type]  # as the columns allow
            self.event_log[order_id].append(event)
            return event

    def save_decision(self, order_id: str, decision: RoutingDecision, at: datetime) -> None:
        self.decisions[order_id] = RecordedDecision(decision.chosen.venue, decision.reason, decision.quotes, at,
                                                    () if decision.is_single else decision.route_legs,
                                                    decision.gain_bps)

    def decision(self, order_id: str) -> RecordedDecision | None:
        return self.decisions.get(order_id)

    def account_orders(self, user_id: str, since: datetime | None, limit: int = 1000) -> dict[str, int]:
        followed = {}
        for order in sorted((o for o in self.orders.values() if o.user_id == user_id),
                            key=lambda o: o.updated_at, reverse=True)[:limit]:
            events_since = [e.seq for e in self.event_log[order.id] if since is not None and e.at >= since]
            if events_since:
                followed[order.id] = min(events_since) - 1
            elif not order.status.is_final:
                followed[order.id] = order.seq if since is not None else 0
        return followed

    def by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        return next((o for o in self.orders.values()
                     if (o.user_id, o.client_order_id) == (user_id, client_order_id)), None)

    def page(self, user_id, statuses, types, before, limit, client_order_id=None):
        mine = [o for o in self.orders.values() if o.user_id == user_id
                and (not statuses or o.status in statuses) and (not types or str(o.type) in types)
                and (before is None or (o.created_at, o.id) < before)
                and (client_order_id is None or o.client_order_id == client_order_id)]
        return sorted(mine, key=lambda o: (o.created_at, o.id), reverse=True)[:limit]

    def stuck(self, before, limit=100):
        waiting = [o for o in self.orders.values() if not o.status.is_final and o.status is not Status.OPEN
                   and o.updated_at < before
                   and not (o.sniper is not None and o.status is Status.TRIGGERED and self.ahead_in_line(o))]
        return sorted(waiting, key=lambda o: o.updated_at)[:limit]

    def any_resting(self, base: str, quote: str) -> bool:
        return any(o.status is Status.OPEN and o.limit is not None
                   and {o.token_in.symbol, o.token_out.symbol} == {base, quote} for o in self.orders.values()) \
            or bool(self.snipers(base, quote))

    def snipers(self, base: str, quote: str, statuses: tuple[Status, ...] = (Status.OPEN,)) -> list[Order]:
        mints = {t.mint for t in (TOKENS.resolve(base), TOKENS.resolve(quote)) if t is not None}
        found = [_read(o) for o in self.orders.values() if o.sniper is not None and o.status in statuses
                 and o.token_out.mint in mints and o.token_in.symbol in (base, quote)]
        return sorted(found, key=lambda o: (o.created_at, o.id))

    def ahead_in_line(self, order: Order) -> bool:
        return self._sniper_placed_before(order, (Status.TRIGGERED, Status.ROUTING, Status.BUILDING,
                                                  Status.SUBMITTED))

    def resting_ahead(self, order: Order) -> bool:
        return self._sniper_placed_before(order, (Status.OPEN,))

    def _sniper_placed_before(self, order: Order, statuses: tuple[Status, ...]) -> bool:
        return any(o.sniper is not None and o.token_out.mint == order.token_out.mint
                   and o.token_in == order.token_in and (o.created_at, o.id) < (order.created_at, order.id)
                   and o.status in statuses for o in self.orders.values())

    def next_in_line(self, token_in: str, target_mint: str) -> Order | None:
        waiting = [o for o in self.orders.values() if o.sniper is not None and o.status is Status.TRIGGERED
                   and o.token_out.mint == target_mint and o.token_in.symbol == token_in]
        return min(waiting, key=lambda o: (o.created_at, o.id), default=None)

    def resting(self, token_in: str, token_out: str, key_bound: Decimal, limit: int) -> list[Order]:
        found = [o for o in self.orders.values() if o.status is Status.OPEN and o.limit is not None
                 and (o.token_in.symbol, o.token_out.symbol) == (token_in, token_out)
                 and o.limit.trigger_key <= key_bound]
        return sorted(found, key=lambda o: (o.limit.trigger_key, o.created_at))[:limit]  # type: ignore[union-attr]

    def claiming(self, base: str, quote: str) -> list[Order]:
        return [o for o in self.orders.values() if o.limit is not None
                and o.status in (Status.TRIGGERED, Status.ROUTING, Status.BUILDING)
                and {o.token_in.symbol, o.token_out.symbol} == {base, quote}] + self.snipers(
            base, quote, (Status.TRIGGERED, Status.ROUTING, Status.BUILDING))

    def expiring(self, before: datetime, limit: int = 100) -> list[Order]:
        due = [o for o in self.orders.values() if o.status is Status.OPEN
               and o.expires_at is not None and o.expires_at <= before]
        return sorted(due, key=lambda o: o.expires_at)[:limit]  # type: ignore[arg-type, return-value]

    def finished_since(self, since, limit=500):
        done = [o for o in self.orders.values() if o.status.is_final and o.updated_at >= since]
        return sorted(done, key=lambda o: o.updated_at, reverse=True)[:limit]

    def record_sweep(self, order_id, expected_seq, at) -> bool:
        order = self.orders[order_id]
        if order.seq != expected_seq:
            return False
        self.orders[order_id] = dataclasses.replace(order, sweeps=order.sweeps + 1, updated_at=at)
        return True


def _read(order: Order) -> Order:
    """As the database reads it back: a sniper's target by its mint, listed by now or not."""
    if order.token_out.listed:
        return order
    return dataclasses.replace(order, token_out=TOKENS.resolve_or_unlisted(order.token_out.mint))


class FakePairLocks:
    """One lock per pair, in process: what PostgreSQL's advisory locks give across processes."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.held: list[str] = []

    @contextmanager
    def hold(self, pair: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(pair, threading.Lock())
        with lock:
            self.held.append(pair)
            yield


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.delayed: list[tuple[str, int]] = []
        self.timers: list[tuple[str, int]] = []  # messages sent with a delay

    def enqueue(self, order_id: str, delay_seconds: int = 0) -> None:
        self.sent.append(order_id)
        if delay_seconds:
            self.timers.append((order_id, delay_seconds))

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        self.delayed.append((receipt_handle, delay_seconds))

    def depth(self) -> dict[str, int]:
        return {"visible": len(self.sent), "in_flight": 0, "delayed": len(self.delayed)}

    def ping(self) -> None:
        pass


class FakeStatistics:
    """Every order counted by status and venue, as the database's rollup counts them (latencies aside)."""

    def __init__(self, orders: FakeOrders):
        self._orders = orders

    def figures(self, bounds: tuple[float, ...]) -> OrderFigures:
        counts: dict[tuple[str, str], int] = {}
        for order in self._orders.orders.values():
            key = (str(order.status), order.venue or "")
            counts[key] = counts.get(key, 0) + 1
        return OrderFigures(counts, {})


class FakePoolEvents:
    """The pool-events queue: changes published, and wake-ups asked for (pair, delay)."""

    def __init__(self) -> None:
        self.pools: dict[str, tuple[str, str]] = {}  # pool id -> its pair, of the changes not yet published
        self.published: list[tuple[str, str]] = []
        self.wakeups: list[tuple[str, str, int]] = []

    @property
    def pending(self) -> set[tuple[str, str]]:
        return set(self.pools.values())

    def changed(self, pool_id: str, base: str, quote: str) -> None:
        self.pools[pool_id] = (base, quote)

    def flush(self, keep: ports.KeepChanges | None = None) -> int:
        kept = self.pools if keep is None or not self.pools else keep(dict(self.pools))
        sent = sorted(set(kept.values()))
        self.pools = {}
        self.published.extend(sent)
        return len(sent)

    def wake(self, base: str, quote: str, delay_seconds: int) -> None:
        self.wakeups.append((base, quote, delay_seconds))


class FakeVenues:
    """Pools and the token registry in memory, with the real pool math; ``failures`` injects venue errors."""

    def __init__(self, pools: list[Pool], clock: FakeClock, changes: FakePoolEvents | None = None):
        self.by_id = {p.id: p for p in pools}
        self.tokens = {t.symbol: TokenListing(t, t.symbol in ("SOL", "JUP"), t.symbol in ("SOL", "JUP"))
                       for t in GENESIS_TOKENS}
        self.changes = changes or FakePoolEvents()
        self.ledger: dict[str, SwapReceipt] = {}
        self.failed: dict[str, VenueError] = {}  # a failed signature stays failed, as on a chain
        self.swap_calls = 0
        self.failures: list[VenueError] = []  # raised by the next swaps, one each
        self.move_price_before_swap: int = 0
        self.landing_seconds = 0.0  # how long a swap takes to reach the pool (the clock moves on meanwhile)
        self.routes_sent: list[tuple[RouteOrder, ...]] = []  # every transaction's routes, as sent
        self.slots: dict[str, int] = {}  # each pool's last swap's slot
        self.slots_run = 0  # swap_slot calls
        self._clock = clock

    def pools(self, token_in: str | None = None, token_out: str | None = None) -> list[Pool]:
        return [p for p in self.by_id.values() if token_in is None or {p.base, p.quote} == {token_in, token_out}]

    def _seconds(self) -> int:
        return int(self._clock.current.timestamp())

    def pairs(self) -> list[tuple[str, str]]:
        return sorted({(p.base, p.quote) for p in self.by_id.values()})

    def pool_snapshots(self, pool_ids: list[str] | None = None) -> list[PoolSnapshot]:
        return [PoolSnapshot(p, self.slots.get(p.id, 0), self._clock.now()) for p in self.by_id.values()
                if pool_ids is None or p.id in pool_ids]

    def listing(self, symbol_or_mint: str) -> TokenListing | None:
        return next((t for t in self.tokens.values() if symbol_or_mint in (t.token.symbol, t.token.mint)), None)

    def listings(self) -> list[TokenListing]:
        return list(self.tokens.values())

    def list_token(self, listing: TokenListing) -> TokenListing:
        taken = [t for t in self.tokens.values() if t.token.symbol.lower() == listing.token.symbol.lower()
                 or t.token.mint == listing.token.mint]
        if taken:
            raise ListingConflict(f"{taken[0].token.symbol} is listed already")
        self.tokens[listing.token.symbol] = listing
        return listing

    def revoke(self, symbol: str, authority: str) -> TokenListing | None:
        found = self.tokens.get(symbol)
        if found is None:
            return None
        self.tokens[symbol] = TokenListing(found.token, found.mint_authority_revoked or authority == "mint",
                                           found.freeze_authority_revoked or authority == "freeze")
        for pool in self.by_id.values():
            if symbol in (pool.base, pool.quote):
                self.changes.changed(pool.id, pool.base, pool.quote)
        return self.tokens[symbol]

    def open_pool(self, pool: Pool) -> Pool:
        if any(p.venue == pool.venue and {p.base, p.quote} == {pool.base, pool.quote} for p in self.by_id.values()):
            raise ListingConflict(f"{pool.venue} has a {pool.base}/{pool.quote} pool already")
        self.by_id[pool.id] = pool
        self.changes.changed(pool.id, pool.base, pool.quote)
        return pool

    def burn_lp(self, pool_id: str) -> Pool | None:
        pool = self.by_id.get(pool_id)
        if pool is None:
            return None
        self.by_id[pool_id] = dataclasses.replace(pool, lp_burned=True)  # type: ignore[type-var]
        self.changes.changed(pool_id, pool.base, pool.quote)
        return self.by_id[pool_id]

    def route_pools_for(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Pool]]:
        return {pair: self.route_pools(*pair) for pair in pairs}

    def route_pools(self, token_in: str, token_out: str) -> list[Pool]:
        on_routes = {p.id for route in candidate_routes(self.by_id.values(), token_in, token_out) for p in route.pools}
        return [p for p in self.by_id.values() if p.id in on_routes]

    def swap(self, signature: str, memo: str, pool_id: str, token_in: str, token_out: str, amount_in: int,
             min_out: int, valid_until: datetime | None = None, injected_failures: bool = True) -> SwapReceipt:
        return self.swap_route(signature, memo, (RouteOrder(amount_in, ((pool_id, token_in, token_out),)),), min_out,
                               valid_until, injected_failures)

    def swap_route(self, signature: str, memo: str, routes: Sequence[RouteOrder], min_out: int,
                   valid_until: datetime | None = None, injected_failures: bool = True) -> SwapReceipt:
        self.swap_calls += 1
        self.routes_sent.append(tuple(routes))
        if self.landing_seconds:
            self._clock.sleep(self.landing_seconds)
        if self.failures and injected_failures:
            raise self.failures.pop(0)
        if signature in self.ledger:
            return self.ledger[signature]
        if signature in self.failed:
            raise self.failed[signature]
        if valid_until is not None and self._clock.now() > valid_until:
            self.failed[signature] = SwapRejected("transaction expired")
            raise self.failed[signature]
        state = dict(self.by_id)
        first_pool, first_token_in, _ = routes[0].hops[0]
        if self.move_price_before_swap:  # someone else trades first
            state[first_pool] = state[first_pool].swap(first_token_in, self.move_price_before_swap,
                                                       self._seconds()).pool_after
        try:
            outcome = run_transaction(state, routes, self._seconds())
        except PoolError as error:
            self.failed[signature] = SwapRejected(str(error))
            raise self.failed[signature] from None
        if outcome.amount_out < min_out:
            self.failed[signature] = SlippageExceeded(f"{outcome.amount_out} below {min_out}")
            raise self.failed[signature]
        self.by_id.update(outcome.pools_after)
        for pool_id, pool in outcome.pools_after.items():
            self.changes.changed(pool_id, pool.base, pool.quote)
            self.slots[pool_id] = len(self.ledger) + 1
        first, last = outcome.legs[0], outcome.legs[-1]
        receipt = SwapReceipt(signature, memo, first.pool_id, first.venue, first.token_in, last.token_out,
                              outcome.amount_in, outcome.amount_out, outcome.fee, len(self.ledger) + 1,
                              self._clock.now(), outcome.legs)
        self.ledger[signature] = receipt
        return receipt

    def swap_slot(self, requests: Sequence[SwapRequest], injected_failures: bool = True,
                  ) -> list[SwapReceipt | VenueError]:
        self.slots_run += 1
        results: list[SwapReceipt | VenueError] = []
        for request in requests:  # one after another, in arrival order
            try:
                results.append(self.swap_route(request.signature, request.memo, request.routes, request.min_out,
                                               request.valid_until, injected_failures))
            except VenueError as error:
                results.append(error)
        return results

    def swap_status(self, signature: str) -> SwapReceipt | None:
        return self.ledger.get(signature)

    def swaps_for(self, memo: str) -> list[SwapReceipt]:
        return [r for r in self.ledger.values() if r.memo == memo]


class FakeConnections:
    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.read_only: set[str] = set()
        self.subs: dict[str, dict[str, int]] = {}
        self.accounts: dict[str, set[str]] = {}
        self.markets: dict[str, set[str]] = {}  # pool id ("*": every pool) -> connections
        self.lock = threading.RLock()

    def ping(self) -> None:
        pass

    def add_connection(self, connection_id: str, user_id: str, max_per_user: int = 0, read_only: bool = False) -> bool:
        if max_per_user and list(self.users.values()).count(user_id) >= max_per_user:
            return False
        self.users[connection_id] = user_id
        if read_only:
            self.read_only.add(connection_id)
        return True

    def may_trade(self, connection_id: str) -> bool:
        return connection_id not in self.read_only

    def open_connections(self) -> int:
        return len(self.users)

    def user_of(self, connection_id: str) -> str | None:
        return self.users.get(connection_id)

    def remove_connection(self, connection_id: str) -> None:
        self.users.pop(connection_id, None)
        for cursors in self.subs.values():
            cursors.pop(connection_id, None)
        for followers in (*self.accounts.values(), *self.markets.values()):
            followers.discard(connection_id)

    def follow_account(self, connection_id: str, user_id: str) -> None:
        self.accounts.setdefault(user_id, set()).add(connection_id)

    def account_followers(self, user_id: str) -> list[str]:
        return sorted(self.accounts.get(user_id, ()))

    def follow_market(self, connection_id: str, pool_ids: list[str] | None) -> None:
        for pool_id in pool_ids if pool_ids is not None else ["*"]:
            self.markets.setdefault(pool_id, set()).add(connection_id)

    def market_followers(self, pool_ids: list[str]) -> dict[str, list[str]]:
        followers = {p: sorted(self.markets.get(p, set()) | self.markets.get("*", set())) for p in pool_ids}
        return {p: c for p, c in followers.items() if c}

    def subscribers(self, order_id: str) -> dict[str, int]:
        return dict(self.subs.get(order_id, {}))

    def unsubscribe(self, connection_id: str, order_id: str) -> None:
        self.subs.get(order_id, {}).pop(connection_id, None)

    @contextmanager
    def delivery(
        self, order_id: str, joining: str | None = None, if_subscribed: bool = False, from_seq: int | None = None,
    ) -> Iterator[Delivery | None]:
        if if_subscribed and not self.subs.get(order_id):
            yield None
            return
        with self.lock:
            if joining is not None:
                cursors = self.subs.setdefault(order_id, {})
                cursors[joining] = 0 if from_seq is None else max(from_seq, cursors.get(joining, -1))
            delivery = Delivery(self.subscribers(order_id))
            try:
                yield delivery
            finally:
                for connection_id, seq in delivery.sent.items():
                    if connection_id in self.subs.get(order_id, {}):
                        self.subs[order_id][connection_id] = seq


    @contextmanager
    def deliveries(self, order_ids: list[str]) -> Iterator[tuple[dict[str, Delivery], list[str]]]:
        with self.lock:
            taken = {order_id: Delivery(self.subscribers(order_id)) for order_id in order_ids
                     if self.subs.get(order_id)}
            try:
                yield taken, []
            finally:
                for order_id, delivery in taken.items():
                    for connection_id, seq in delivery.sent.items():
                        if connection_id in self.subs.get(order_id, {}):
                            self.subs[order_id][connection_id] = seq


class FakeRateLimiter:
    """A token bucket per key on the injected clock, as the Redis adapter keeps them."""

    def __init__(self, bucket: TokenBucket, clock: FakeClock):
        self.bucket = bucket
        self.clock = clock
        self.state: dict[str, tuple[float, int]] = {}

    def wait_ms(self, key: str, cost: int = 1) -> int:
        now = int(self.clock.current.timestamp() * 1000)
        tokens, last = self.state.get(key, (self.bucket.burst, now))
        left, wait = self.bucket.take(tokens, last, now, cost)
        self.state[key] = (left, max(now, last))
        return wait


class FakePush:
    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()

    def send(self, connection_id: str, payload: dict[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        self.frames.setdefault(connection_id, []).append(payload)
        return True

    def statuses(self, connection_id: str) -> list[str]:
        return [f["status"] for f in self.frames.get(connection_id, []) if f.get("type") == "order.update"]



class FakePlacement:
    """IdempotentPlacement without Powertools: a key always maps to the same order id."""

    def __init__(self, service: OrderService):
        self.service = service

    def place(self, user_id: str, key: str | None, order: PlaceOrder, context: Any = None) -> PlacedOrder:
        import uuid

        order_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{user_id}\n{key}")) if key else None
        placed = self.service.place(user_id, order, order_id)
        return PlacedOrder(placed.id, Status.PENDING)


class FakeMetrics:
    """The metrics sink: keeps what it was given."""

    def __init__(self) -> None:
        self.recorded: list[Measurement] = []

    def record(self, measurements: list[Measurement]) -> None:
        self.recorded.extend(measurements)

    def names(self) -> list[str]:
        return [m.name for m in self.recorded]


def _conforms() -> None:
    """Never called: mypy (``make lint``) checks here that each fake implements the port the services see."""
    orders = FakeOrders()
    clock = FakeClock()
    _clock: ports.Clock = clock
    _orders: ports.Orders = orders
    _resting: ports.RestingOrders = orders
    _locks: ports.PairLocks = FakePairLocks()
    _queue: ports.MessageQueue = FakeQueue()
    _statistics: ports.OrderStatistics = FakeStatistics(orders)
    _venues: ports.VenueNetwork = FakeVenues([], clock)
    _pool_events: ports.PoolEvents = FakePoolEvents()
    _connections: ports.Connections = FakeConnections()
    _limiter: ports.RateLimiter = FakeRateLimiter(TokenBucket(1, 1), clock)
    _push: ports.Push = FakePush()
    _metrics: ports.MetricsSink = FakeMetrics()
    _placement: ports.Placement = FakePlacement(OrderService(orders, FakeQueue(), clock))


def pool_quotes(venues: Any, token_in: str, token_out: str, amount_in: int, now: int | None = None,
                ) -> list[VenueQuote]:
    """Each pool of the pair's quote for the amount, now, on these venues (real or fake): what a test compares the
    router with."""
    at = int(datetime.now(UTC).timestamp()) if now is None else now
    return [quote_pool(p, token_in, token_out, amount_in, at) for p in venues.pools(token_in, token_out)]
