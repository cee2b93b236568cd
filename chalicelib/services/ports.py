"""The interfaces the services need; adapters implement them and tests fake them by hand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ..domain.commands import PlaceOrder
from ..domain.markets import PoolSnapshot
from ..domain.orders import Order, OrderEvent, Status
from ..domain.pools import Pool
from ..domain.routing import RecordedDecision, RoutingDecision
from ..domain.telemetry import Measurement
from ..domain.tokens import TokenListing
from ..domain.transactions import RouteOrder
from ..domain.venues import LegReceipt, SwapReceipt, SwapRequest, VenueError
from .read_models import OrderFigures, PlacedOrder


class Clock(Protocol):
    def now(self) -> datetime: ...


class MetricsSink(Protocol):
    """Where business metrics go: CloudWatch's embedded metric format on AWS; nowhere locally, where ``/metrics``
    reads the same figures from the database."""

    def record(self, measurements: list[Measurement]) -> None: ...


class NoMetrics:
    def record(self, measurements: list[Measurement]) -> None:
        pass


# A column a transition may set alongside the status (a route and its legs, as tuples).
OrderField = int | str | datetime | tuple[RouteOrder, ...] | tuple[LegReceipt, ...] | None


@dataclass(frozen=True)
class Passed:
    """A status an order passes through on its way to a transition's ``new`` one: its own event, of its own time."""

    status: Status
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class Transition:
    """One order's conditional status change, as ``transition`` makes it: from ``expected`` at ``expected_seq`` to
    ``new``, with its event's data and the columns it sets alongside. It may pass through statuses on the way
    (``via``, each stored as its event before ``new``'s) and record the order's routing ``decision``: all of it,
    or nothing when the order is no longer where the step expected it."""

    order_id: str
    expected: Status
    new: Status
    data: dict[str, Any]
    expected_seq: int
    fields: dict[str, OrderField] = field(default_factory=dict)
    via: tuple[Passed, ...] = ()
    decision: RoutingDecision | None = None

    def events(self, last: OrderEvent) -> list[OrderEvent]:
        """Every event the change stored, given the last one (``new``'s), in order."""
        first_seq = last.seq - len(self.via)
        return [*(OrderEvent(self.order_id, first_seq + i, p.status, p.at, p.data) for i, p in enumerate(self.via)),
                last]


class ClientOrderIdTaken(Exception):
    """Another order of the user has this client order id."""

    def __init__(self, client_order_id: str, order_id: str):
        super().__init__(f"clientOrderId {client_order_id!r} is taken by order {order_id}")
        self.order_id = order_id


class RestingOrders(Protocol):
    """The resting orders a pool event may wake, read through an index, and the change that wakes one."""

    def any_resting(self, base: str, quote: str) -> bool:
        """Whether any limit order of the pair rests (open), in either direction, or any sniper waits for it."""
        ...

    def snipers(self, base: str, quote: str, statuses: tuple[Status, ...] = (Status.OPEN,)) -> list[Order]:
        """Snipers buying either token of the pair with the other, in these statuses, in placement order."""
        ...

    def ahead_in_line(self, order: Order) -> bool:
        """Whether a sniper of the same pair placed before this one is triggered and not yet past its swap."""
        ...

    def resting_ahead(self, order: Order) -> bool:
        """Whether a sniper of the same pair placed before this one still rests (open): it is triggered first."""
        ...

    def next_in_line(self, token_in: str, target_mint: str) -> Order | None:
        """The earliest placed sniper of the pair that is triggered and waits for its turn."""
        ...

    def resting(self, token_in: str, token_out: str, key_bound: Decimal, limit: int) -> list[Order]:
        """Open orders selling ``token_in`` for ``token_out`` whose priority key is at most ``key_bound``, best
        first (price, then time)."""
        ...

    def claiming(self, base: str, quote: str) -> list[Order]:
        """Limit and sniper orders of the pair triggered and not yet submitted: the liquidity their swaps will
        take."""
        ...

    def transition(
        self, order_id: str, expected: Status, new: Status, at: datetime, data: dict[str, Any],
        expected_seq: int | None = None, **fields: OrderField,
    ) -> OrderEvent | None: ...


class Orders(RestingOrders, Protocol):
    """Orders, their events and routing decisions; and, for the trigger, the resting limit orders."""

    def ping(self) -> None:
        """Raises if the store cannot be reached (for /health)."""
        ...

    def add(self, order: Order, event: OrderEvent) -> bool:
        """Stores a new order and its first event; False (and nothing stored) when its id exists already.
        ClientOrderIdTaken (and nothing stored) when another order of the user has its client order id."""
        ...

    def by_client_id(self, user_id: str, client_order_id: str) -> Order | None: ...

    def get(self, order_id: str) -> Order | None: ...

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        """The orders of these ids that exist, in one read."""
        ...

    def transition_many(self, steps: Sequence[Transition], at: datetime) -> list[OrderEvent | None]:
        """Makes every change as ``transition`` would, in one transaction (one statement for the steps that set
        the same columns), each step's statuses passed on the way and its decision with it: each step's last
        event, or None for an order no longer where its step expected it (and nothing of its step stored)."""
        ...

    def events(self, order_id: str, after_seq: int = 0) -> list[OrderEvent]: ...

    def own_events(self, order_id: str, user_id: str, after_seq: int = 0) -> list[OrderEvent] | None:
        """The order's events after ``after_seq``, if it is the user's; None if it is not, or there is no such
        order (one read)."""
        ...

    def save_decision(self, order_id: str, decision: RoutingDecision, at: datetime) -> None: ...

    def page(
        self, user_id: str, statuses: list[Status], types: list[str], before: tuple[datetime, str] | None,
        limit: int, client_order_id: str | None = None,
    ) -> list[Order]: ...

    def stuck(self, before: datetime, limit: int = 100) -> list[Order]: ...

    def finished_since(self, since: datetime, limit: int = 500) -> list[Order]: ...

    def record_sweep(self, order_id: str, expected_seq: int, at: datetime) -> bool: ...

    def decision(self, order_id: str) -> RecordedDecision | None: ...

    def account_orders(self, user_id: str, since: datetime | None, limit: int = 1000) -> dict[str, int]:
        """The user's orders an account stream follows, each with the seq it has been seen up to: with ``since``,
        every order with an event at or after it (seen up to the one before) and every unfinished one (seen up to
        its last); without, every unfinished one from its first event. The ``limit`` most recently changed."""
        ...

    def expiring(self, before: datetime, limit: int = 100) -> list[Order]:
        """Resting orders whose time in force ends by ``before``, soonest first."""
        ...


# Which of a flush's changed pools (pool id -> (base, quote)) to publish.
KeepChanges = Callable[[dict[str, tuple[str, str]]], dict[str, tuple[str, str]]]


class PoolChanges(Protocol):
    """Where the venues say that a pool's state changed (a chain's logs); published when the invocation ends."""

    def changed(self, pool_id: str, base: str, quote: str) -> None: ...

    def flush(self, keep: KeepChanges | None = None) -> int:
        """Publishes the changes collected so far, those ``keep`` returns if given, as one event: how many pools it
        named."""
        ...


class Wakeups(Protocol):
    def wake(self, base: str, quote: str, delay_seconds: int) -> None:
        """Has the trigger evaluate the pair again after ``delay_seconds`` (at most 900), as if a pool changed."""
        ...


class PoolEvents(PoolChanges, Wakeups, Protocol):
    """The pool-events queue: the venues' changes, and the timers that wake a pair when a pool opens."""


class NoPoolChanges:
    def changed(self, pool_id: str, base: str, quote: str) -> None:
        pass

    def flush(self, keep: KeepChanges | None = None) -> int:
        return 0

    def wake(self, base: str, quote: str, delay_seconds: int) -> None:
        pass


class PairLocks(Protocol):
    def hold(self, pair: str) -> AbstractContextManager[None]:
        """Holds the pair's lock across processes: one trigger evaluation of a pair at a time."""
        ...


class OrderQueue(Protocol):
    def enqueue(self, order_id: str, delay_seconds: int = 0) -> None:
        """Asks the worker to look at the order, at once or after ``delay_seconds`` (at most 900)."""
        ...


class Redelivery(Protocol):
    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None: ...


class MessageQueue(OrderQueue, Redelivery, Protocol):
    """The orders queue (and its dead-letter queue) whole: sending, redelivering, counting, and being reachable."""

    def depth(self) -> dict[str, int]: ...

    def ping(self) -> None: ...


class Venues(Protocol):
    def pools(self, token_in: str | None = None, token_out: str | None = None) -> list[Pool]: ...

    def route_pools(self, token_in: str, token_out: str) -> list[Pool]:
        """Every pool a route of at most two hops between the tokens may use, as quoting them finds them now."""
        ...

    def route_pools_for(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Pool]]:
        """``route_pools`` of each (token in, token out) pair, quoted at once."""
        ...

    def swap(
        self, signature: str, memo: str, pool_id: str, token_in: str, token_out: str, amount_in: int, min_out: int,
        valid_until: datetime | None = None, injected_failures: bool = True,
    ) -> SwapReceipt: ...

    def swap_route(
        self, signature: str, memo: str, routes: Sequence[RouteOrder], min_out: int,
        valid_until: datetime | None = None, injected_failures: bool = True,
    ) -> SwapReceipt:
        """One transaction of every route's legs, all or nothing, under ``signature`` (executed once)."""
        ...

    def swap_slot(
        self, requests: Sequence[SwapRequest], injected_failures: bool = True,
    ) -> list[SwapReceipt | VenueError]:
        """The transactions sent together, executed one after another in one slot, each as ``swap_route`` would:
        each one's receipt or refusal, in request order."""
        ...

    def swap_status(self, signature: str) -> SwapReceipt | None: ...

    def listing(self, symbol_or_mint: str) -> TokenListing | None:
        """The listed token and its authorities as they are now; None if no venue lists it."""
        ...


class VenueData(Protocol):
    """What the venues show without executing anything."""

    def pools(self, token_in: str | None = None, token_out: str | None = None) -> list[Pool]: ...

    def route_pools(self, token_in: str, token_out: str) -> list[Pool]: ...

    def swaps_for(self, memo: str) -> list[SwapReceipt]: ...

    def listing(self, symbol_or_mint: str) -> TokenListing | None: ...

    def listings(self) -> list[TokenListing]: ...

    def pairs(self) -> list[tuple[str, str]]:
        """Every (base, quote) pair some pool trades."""
        ...

    def pool_snapshots(self, pool_ids: list[str] | None = None) -> list[PoolSnapshot]:
        """These pools (None: every pool) as their last change left them, with its slot; unknown ids are left out."""
        ...


class Launchpad(Protocol):
    """Listing on the venues, as a token's and a pool's creators do on a chain."""

    def list_token(self, listing: TokenListing) -> TokenListing:
        """Raises ListingConflict when the symbol (in any case) or the mint is taken."""
        ...

    def revoke(self, symbol: str, authority: str) -> TokenListing | None:
        """Revokes the token's ``mint`` or ``freeze`` authority (revoking twice changes nothing); None: no token."""
        ...

    def open_pool(self, pool: Pool) -> Pool:
        """Creates the pool; ListingConflict when the venue has a pool of the pair already (in either order)."""
        ...

    def burn_lp(self, pool_id: str) -> Pool | None:
        """Marks the pool's liquidity burned (it can never be withdrawn); None: no such pool."""
        ...


class VenueNetwork(Venues, VenueData, Launchpad, Protocol):
    """The venues whole: what the worker executes on, what the market data shows, and listing."""


@dataclass
class Delivery:
    """One turn at pushing an order's events: its subscribers' cursors, read under the order's delivery lock, and
    the last seq this turn sent to each connection."""

    cursors: dict[str, int]
    sent: dict[str, int] = field(default_factory=dict)


class Connections(Protocol):
    def ping(self) -> None: ...

    def add_connection(self, connection_id: str, user_id: str, max_per_user: int = 0, read_only: bool = False) -> bool:
        """Registers the connection; False (and nothing registered) when the user has ``max_per_user`` open."""
        ...

    def may_trade(self, connection_id: str) -> bool: ...

    def open_connections(self) -> int: ...

    def user_of(self, connection_id: str) -> str | None: ...

    def remove_connection(self, connection_id: str) -> None: ...

    def subscribers(self, order_id: str) -> dict[str, int]:
        """Each subscribed connection and the last seq it was sent."""
        ...

    def unsubscribe(self, connection_id: str, order_id: str) -> None: ...

    def delivery(
        self, order_id: str, joining: str | None = None, if_subscribed: bool = False, from_seq: int | None = None,
    ) -> AbstractContextManager[Delivery | None]:
        """Holds the order's delivery lock, so each connection gets its events once and in order, and yields the
        subscribers' cursors; on leaving, records the ``sent`` cursors of connections still subscribed.
        ``joining`` subscribes that connection under the lock: replaying from the start, or, with ``from_seq``,
        after that seq (a connection that is further already stays where it is). With ``if_subscribed``, an order
        nobody follows yields None, without taking the lock."""
        ...

    def deliveries(self, order_ids: list[str]) -> AbstractContextManager[tuple[dict[str, Delivery], list[str]]]:
        """``delivery`` for many orders at once (those nobody follows are left out): the deliveries taken, and the
        orders whose lock another delivery holds now, to be delivered one by one."""
        ...

    def follow_account(self, connection_id: str, user_id: str) -> None:
        """The connection follows every order of the user: each one placed from now on is joined as it is."""
        ...

    def account_followers(self, user_id: str) -> list[str]: ...

    def follow_market(self, connection_id: str, pool_ids: list[str] | None) -> None:
        """The connection follows these pools' changes (None: every pool's)."""
        ...

    def market_followers(self, pool_ids: list[str]) -> dict[str, list[str]]:
        """For each of these pools that anyone follows, who does."""
        ...


class RateLimiter(Protocol):
    def wait_ms(self, key: str, cost: int = 1) -> int:
        """0 if ``key`` may go ahead now (and counts it), else how many milliseconds until it may."""
        ...


class Placement(Protocol):
    def place(self, user_id: str, key: str | None, order: PlaceOrder, context: Any = None) -> PlacedOrder:
        """The accepted order's id and status; the same for every repeat of one Idempotency-Key."""
        ...


class Push(Protocol):
    def send(self, connection_id: str, payload: dict[str, Any]) -> bool: ...


class OrderStatistics(Protocol):
    """The figures of every order, for /metrics: counted in the database, not by the process that reads them."""

    def figures(self, bounds: tuple[float, ...]) -> OrderFigures: ...


class QueueDepth(Protocol):
    def depth(self) -> dict[str, int]: ...


class OpenConnections(Protocol):
    def open_connections(self) -> int: ...
