"""Waking resting limit orders when the venues' prices move: one trigger mechanism for every resting order type.

A pool event (any change of a pool's state) names the pair it trades. For each pair the trigger reads the pools'
state, replays on it the swaps of orders already triggered and not yet swapped (their liquidity is taken), and then
reads, through an index, only the resting orders that the best price now could satisfy, in price-then-time priority.
Each is checked against the executable quote for its whole size on the simulated state (the router's best route over
the pair's pools: one, or a split when it pays; a hop through a third token, which no event of this pair prices, is
only taken if it pays more when the order is built); one that qualifies moves
from ``open`` to ``triggered`` (a conditional change, so a cancel or an expiry that got there first wins) and onto
the orders queue, and its fill is applied to the simulated state before the next order is checked: two orders never
trigger on liquidity only one of them can take. Evaluations of one pair are serialised by a lock.

Snipers waiting for the pair come after the limit orders, in placement order: each whose launch passes its checks
is triggered the same way, on the state its predecessors left, ``ahead`` of its pool's open (plus its delay): the
time to build its swap, and the least time a swap takes to land, so that the first lands as the pool opens. For one
whose pool opens later, the pair's evaluation is scheduled again for that instant: a pool event delayed by a message
timer (at most 15 minutes ahead; the sweeper schedules later opens as they near), and the last second waited here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ..domain.events import Triggered
from ..domain.limit_orders import Side, best_price_bound
from ..domain.orders import Order, Status
from ..domain.pools import Pool, PoolError, SwapOutcome
from ..domain.routing import NoRoute, RoutingMode, decide_route
from ..domain.sniper_orders import PREPARE_AHEAD, check_launch
from ..domain.tokens import TOKENS, TokenListing
from ..domain.transactions import TransactionOutcome, run_transaction
from .notifications import Notifier
from .ports import Clock, NoPoolChanges, OrderQueue, PairLocks, RestingOrders, VenueData, Wakeups

log = logging.getLogger(__name__)

MAX_CHECKED_PER_SIDE = 200  # orders one evaluation checks per side; the backstop rechecks any left behind
WAKE_HORIZON = timedelta(minutes=15)  # SQS delays a message by at most this
# A triggered sniper at the head of its line still untouched after this has no message on its way (its trigger died
# between the claim and the send): the pair's next evaluation sends it one.
STALLED_AFTER = timedelta(seconds=2)
LAST_WAIT = timedelta(seconds=1)  # message timers count whole seconds: the rest is waited here


@dataclass
class TriggerReport:
    pairs: int = 0
    checked: int = 0
    triggered: list[str] = field(default_factory=list)


class Triggers:
    def __init__(self, orders: RestingOrders, venues: VenueData, queue: OrderQueue, notifier: Notifier, clock: Clock,
                 locks: PairLocks, max_checked_per_side: int = MAX_CHECKED_PER_SIDE,
                 checkpoint: Callable[[str], None] = lambda step: None, wakeups: Wakeups | None = None,
                 sleep: Callable[[float], None] = lambda seconds: None, send_lead: timedelta = timedelta(0),
                 min_gain_bps: Decimal = Decimal(1)):
        self._min_gain_bps = min_gain_bps
        self._wakeups = wakeups or NoPoolChanges()
        self._ahead = send_lead + PREPARE_AHEAD  # a sniper is triggered this long before its pool opens to it
        self._sleep = sleep
        self._orders = orders
        self._venues = venues
        self._queue = queue
        self._notifier = notifier
        self._clock = clock
        self._locks = locks
        self._max_checked = max_checked_per_side
        self._checkpoint = checkpoint  # "after_triggered": fault injection hooks in here

    def on_pools_changed(self, pairs: Iterable[tuple[str, str]], cause: str = "pool",
                         wake_within: timedelta = WAKE_HORIZON) -> TriggerReport:
        """Checks the resting orders of each pair once, however many of its pools' events arrived together; a
        sniper's pool opening within ``wake_within`` gets its wake-up scheduled."""
        report = TriggerReport()
        for base, quote in sorted(set(pairs)):
            report.pairs += 1
            # The common case under market orders alone: one indexed read, no lock, no pool state to parse. An
            # order that starts resting after this read is checked by its own placement.
            if not self._orders.any_resting(base, quote):
                continue
            with self._locks.hold(f"{base}/{quote}"):
                self._evaluate(base, quote, cause, report, wake_within)
        return report

    def recheck(self, wake_within: timedelta) -> TriggerReport:
        """Every listed pair, as the backstop does in case a pool event was lost."""
        return self.on_pools_changed(self._venues.pairs(), cause="recheck", wake_within=wake_within)

    def _evaluate(self, base: str, quote: str, cause: str, report: TriggerReport, wake_within: timedelta) -> None:
        if not self._orders.any_resting(base, quote):
            return  # the last resting order of the pair went while waiting for the lock
        state = {pool.id: pool for pool in self._venues.pools(base, quote)}
        for claiming in self._orders.claiming(base, quote):
            self._take(state, claiming)
        self._evaluate_limits(base, quote, cause, report, state)
        self._evaluate_snipers(base, quote, cause, report, state, wake_within)

    def _evaluate_limits(self, base: str, quote: str, cause: str, report: TriggerReport,
                         state: dict[str, Pool]) -> None:
        for side in (Side.SELL, Side.BUY):
            token_in, token_out = (base, quote) if side is Side.SELL else (quote, base)
            bound = best_price_bound(state.values(), side)
            if bound is None:
                continue
            # One unit of the quote token's precision of slack: a derived price is rounded in the trader's favour.
            slack = Decimal(1).scaleb(-TOKENS[quote].decimals)
            key_bound = bound + slack if side is Side.SELL else -bound + slack
            for order in self._orders.resting(token_in, token_out, key_bound, self._max_checked):
                report.checked += 1
                if order.expired_at(self._clock.now()):
                    continue  # its own message expires it
                if self._trigger(order, state, cause):
                    report.triggered.append(order.id)

    def _evaluate_snipers(self, base: str, quote: str, cause: str, report: TriggerReport, state: dict[str, Pool],
                          wake_within: timedelta) -> None:
        snipers = self._orders.snipers(base, quote)
        if not snipers:
            return
        self._restart_stalled_lines(base, quote)
        listings: dict[str, TokenListing | None] = {}
        due = self._snipe(snipers, state, cause, report, listings)
        if due is not None and due - self._clock.now() <= LAST_WAIT:
            # Less than a message timer's second away: waited here, then those it is due for go first.
            self._sleep(max(0.0, (due - self._clock.now()).total_seconds()))
            due = self._snipe(self._orders.snipers(base, quote), state, cause, report, listings)
        if due is not None:
            delay = due - self._clock.now()
            if delay <= wake_within:
                self._wakeups.wake(base, quote, min(math.floor(delay.total_seconds()),
                                                    int(WAKE_HORIZON.total_seconds())))

    def _restart_stalled_lines(self, base: str, quote: str) -> None:
        """A trigger that died between claiming a sniper and queueing it left it triggered with no message: the
        snipers behind it would wait for the sweeper. The pair's next evaluation (the redelivered event) queues the
        head of each line again; a duplicate message is harmless."""
        in_line = self._orders.snipers(base, quote, (Status.TRIGGERED, Status.ROUTING, Status.BUILDING,
                                                     Status.SUBMITTED))
        heads: dict[tuple[str, str], Order] = {}
        for order in in_line:  # in placement order: the first of each line is its head
            heads.setdefault((order.token_in.symbol, order.token_out.mint), order)
        for head in heads.values():
            if head.status is Status.TRIGGERED and self._clock.now() - head.updated_at > STALLED_AFTER:
                self._queue.enqueue(head.id)

    def _snipe(self, snipers: list[Order], state: dict[str, Pool], cause: str, report: TriggerReport,
               listings: dict[str, TokenListing | None]) -> datetime | None:
        """Triggers, in placement order, each sniper its launch lets through now; returns when the next one waiting
        for a pool's open (or its delay after it) is due to be triggered."""
        fire_at: datetime | None = None
        # One instant for the whole pass: read per sniper, the moment a line was due could fall between two of its
        # checks, and the second in line was triggered before the first.
        now = self._clock.now()
        for order in snipers:
            report.checked += 1
            if order.expired_at(now):
                continue  # its own message expires it
            assert order.sniper is not None
            target = order.token_out.mint
            if target not in listings:
                listings[target] = self._venues.listing(target)
            check = check_launch(order.sniper, order.token_in, order.token_out, order.swap_amount_in,
                                 listings[target], state.values(), now, self._ahead)
            if check.fires:
                assert check.pool is not None and check.outcome is not None
                after = {check.pool.id: check.outcome.pool_after}
                if self._claim(order, check.pool.id, check.outcome.amount_out, after, state, cause, None):
                    report.triggered.append(order.id)
            elif check.fire_at is not None:
                fire_at = check.fire_at if fire_at is None else min(fire_at, check.fire_at)
        return None if fire_at is None else fire_at - self._ahead

    def _trigger(self, order: Order, state: dict[str, Pool], cause: str) -> bool:
        assert order.limit is not None
        best = self._best_route(order, state)
        if best is None or best.amount_out < order.limit.min_amount_out:
            return False
        return self._claim(order, best.legs[0].pool_id, best.amount_out, best.pools_after, state, cause,
                           order.limit.min_amount_out)

    def _best_route(self, order: Order, state: dict[str, Pool]) -> TransactionOutcome | None:
        """What the order's swap would do on the simulated state now: the router's best route over these pools."""
        now = int(self._clock.now().timestamp())
        try:
            decision = decide_route(list(state.values()), order.token_in.symbol, order.token_out.symbol,
                                    order.swap_amount_in, now, self._min_gain_bps,
                                    single=order.routing is RoutingMode.SINGLE)
        except NoRoute:
            return None
        return run_transaction(state, decision.routes(), now)

    def _claim(self, order: Order, pool_id: str, amount_out: int, pools_after: dict[str, Pool],
               state: dict[str, Pool], cause: str, required: int | None) -> bool:
        token_out = order.token_out
        event = self._orders.transition(
            order.id, Status.OPEN, Status.TRIGGERED, self._clock.now(),
            Triggered(cause=cause, pool_id=pool_id, quoted_out=token_out.format(amount_out),
                      required_out=None if required is None else token_out.format(required)).data(),
            expected_seq=order.seq)
        if event is None:  # cancelled, expired or triggered by another evaluation since it was read
            return False
        state.update(pools_after)
        self._checkpoint("after_triggered")
        self._queue.enqueue(order.id)  # lost with a crash right here, the sweeper finds it triggered and stuck
        self._notifier.publish(order.id, [event])
        return True

    def _take(self, state: dict[str, Pool], order: Order) -> None:
        if order.sniper is None:
            taken = self._best_route(order, state)
            if taken is not None:
                state.update(taken.pools_after)
            return
        # A sniper triggered ahead of its pool's open takes its liquidity at the open: replayed as of then.
        best = _best_fill(state.values(), order.token_in.symbol, order.swap_amount_in, self._clock.now() + self._ahead)
        if best is not None:
            state[best[0].id] = best[1].pool_after


def _best_fill(pools: Iterable[Pool], token_in: str, amount_in: int, now: datetime) -> tuple[Pool, SwapOutcome] | None:
    best: tuple[Pool, SwapOutcome] | None = None
    for pool in pools:
        try:
            outcome = pool.swap(token_in, amount_in, int(now.timestamp()))
        except PoolError:
            continue
        if best is None or outcome.amount_out > best[1].amount_out:
            best = (pool, outcome)
    return best
