"""Waking resting limit orders when the venues' prices move: one trigger mechanism for every resting order type.

A pool event (any change of a pool's state) names the pair it trades. For each pair the trigger reads the pools'
state, replays on it the swaps of orders already triggered and not yet swapped (their liquidity is taken), and then
reads, through an index, only the resting orders that the best price now could satisfy, in price-then-time priority.
Each is checked against the executable quote for its whole size on the simulated state; one that qualifies moves
from ``open`` to ``triggered`` (a conditional change, so a cancel or an expiry that got there first wins) and onto
the orders queue, and its fill is applied to the simulated state before the next order is checked: two orders never
trigger on liquidity only one of them can take. Evaluations of one pair are serialised by a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain.events import Triggered
from ..domain.limit_orders import Side, best_price_bound
from ..domain.orders import Order, Status
from ..domain.pools import Pool, PoolError, SwapOutcome
from ..domain.tokens import TOKENS
from .notifications import Notifier
from .ports import Clock, OrderQueue, PairLocks, RestingOrders, VenueData

log = logging.getLogger(__name__)

MAX_CHECKED_PER_SIDE = 200  # orders one evaluation checks per side; the backstop rechecks any left behind


@dataclass
class TriggerReport:
    pairs: int = 0
    checked: int = 0
    triggered: list[str] = field(default_factory=list)


class Triggers:
    def __init__(self, orders: RestingOrders, venues: VenueData, queue: OrderQueue, notifier: Notifier, clock: Clock,
                 locks: PairLocks, max_checked_per_side: int = MAX_CHECKED_PER_SIDE,
                 checkpoint: Callable[[str], None] = lambda step: None):
        self._orders = orders
        self._venues = venues
        self._queue = queue
        self._notifier = notifier
        self._clock = clock
        self._locks = locks
        self._max_checked = max_checked_per_side
        self._checkpoint = checkpoint  # "after_triggered": fault injection hooks in here

    def on_pools_changed(self, pairs: Iterable[tuple[str, str]], cause: str = "pool") -> TriggerReport:
        """Checks the resting orders of each pair once, however many of its pools' events arrived together."""
        report = TriggerReport()
        for base, quote in sorted(set(pairs)):
            report.pairs += 1
            with self._locks.hold(f"{base}/{quote}"):
                self._evaluate(base, quote, cause, report)
        return report

    def _evaluate(self, base: str, quote: str, cause: str, report: TriggerReport) -> None:
        if not self._orders.any_resting(base, quote):
            return  # the common case under market orders alone: one indexed read, no pool state to parse
        state = {pool.id: pool for pool in self._venues.pools(base, quote)}
        for claiming in self._orders.claiming(base, quote):
            self._take(state, claiming)
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

    def _trigger(self, order: Order, state: dict[str, Pool], cause: str) -> bool:
        assert order.limit is not None
        best = _best_fill(state.values(), order.token_in.symbol, order.swap_amount_in)
        if best is None or best[1].amount_out < order.limit.min_amount_out:
            return False
        pool, outcome = best
        event = self._orders.transition(
            order.id, Status.OPEN, Status.TRIGGERED, self._clock.now(),
            Triggered(cause=cause, pool_id=pool.id, quoted_out=order.token_out.format(outcome.amount_out),
                      required_out=order.token_out.format(order.limit.min_amount_out)).data(),
            expected_seq=order.seq)
        if event is None:  # cancelled, expired or triggered by another evaluation since it was read
            return False
        state[pool.id] = outcome.pool_after
        self._checkpoint("after_triggered")
        self._queue.enqueue(order.id)  # lost with a crash right here, the sweeper finds it triggered and stuck
        self._notifier.publish(order.id, [event])
        return True

    def _take(self, state: dict[str, Pool], order: Order) -> None:
        best = _best_fill(state.values(), order.token_in.symbol, order.swap_amount_in)
        if best is not None:
            state[best[0].id] = best[1].pool_after


def _best_fill(pools: Iterable[Pool], token_in: str, amount_in: int) -> tuple[Pool, SwapOutcome] | None:
    best: tuple[Pool, SwapOutcome] | None = None
    for pool in pools:
        try:
            outcome = pool.swap(token_in, amount_in, 0)
        except PoolError:
            continue
        if best is None or outcome.amount_out > best[1].amount_out:
            best = (pool, outcome)
    return best
