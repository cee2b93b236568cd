"""The scheduled sweeper: no accepted order may stay unfinished because a message or an invocation was lost.

An order the worker should be moving that has not changed for ``stuck_after`` is enqueued again (a duplicate
message is harmless: every step is conditional). After ``max_sweeps`` such attempts it is ended: confirmed if
its swap landed after all, failed once the swap's signature has expired and so can never land.

It is the resting orders' backstop too: each resting order whose time in force ends within ``EXPIRY_LOOKAHEAD``
gets a message delayed until then (the worker expires it on time), and the trigger rechecks every pair, in case a
pool event was lost; a sniper whose pool opens within ``EXPIRY_LOOKAHEAD`` gets its pair's wake-up then, however far
ahead the pool was launched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from .execution import Executor
from .notifications import Notifier
from .ports import Clock, OrderQueue, Orders
from .triggers import Triggers

# More than the sweeper's period (a minute), so that every expiry gets its message from at least one sweep.
EXPIRY_LOOKAHEAD = timedelta(minutes=2)


@dataclass
class SweepReport:
    requeued: int = 0
    ended: int = 0
    caught_up: int = 0
    expiry_timers: int = 0
    rechecked_triggered: int = 0


class Sweeper:
    def __init__(
        self,
        orders: Orders,
        queue: OrderQueue,
        executor: Executor,
        clock: Clock,
        stuck_after: timedelta = timedelta(minutes=2),
        max_sweeps: int = 3,
        batch: int = 100,
        notifier: Notifier | None = None,
        triggers: Triggers | None = None,
    ):
        self._orders = orders
        self._queue = queue
        self._executor = executor
        self._clock = clock
        self._stuck_after = stuck_after
        self._max_sweeps = max_sweeps
        self._batch = batch
        self._notifier = notifier
        self._triggers = triggers

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self._clock.now()
        for order in self._orders.stuck(now - self._stuck_after, self._batch):
            if order.sweeps >= self._max_sweeps:
                ended = self._executor.give_up(order.id, f"no progress after {order.sweeps} redeliveries")
                report.ended += ended is not None and ended.is_final
            elif self._orders.record_sweep(order.id, order.seq, now):
                self._queue.enqueue(order.id)
                report.requeued += 1
        if self._notifier is not None:
            # A final status stored by an invocation that died before pushing it, with no message left to
            # come back (it was dead-lettered, or the sweeper itself ended the order), still reaches subscribers.
            for order in self._orders.finished_since(now - 2 * self._stuck_after):
                report.caught_up += self._notifier.catch_up(order.id, order.seq)
        for order in self._orders.expiring(now + EXPIRY_LOOKAHEAD, self._batch):
            assert order.expires_at is not None
            self._queue.enqueue(order.id, math.ceil(max(0.0, (order.expires_at - now).total_seconds())))
            report.expiry_timers += 1
        if self._triggers is not None:
            # Snipers whose pool opens to them before the next sweep get their wake-up (from this sweep and the
            # one before, at most: the event that announced the pool scheduled those within 15 minutes).
            report.rechecked_triggered = len(self._triggers.recheck(wake_within=EXPIRY_LOOKAHEAD).triggered)
        return report
