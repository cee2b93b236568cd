"""Crash points for fault-injection runs: the process kills itself at a named step of the worker, as a Lambda
environment does when it runs out of memory or time mid-invocation. Nothing happens unless it is configured.

``FAULT_CRASH_AT`` names the step and ``FAULT_CRASH_EVERY`` how often it kills: the Nth, 2Nth... time this process
reaches it. The steps:

- ``after_routing``: the route is chosen and stored, its swap not yet sent (an order advancing alone is not yet
  ``building``; a delivery's market orders advancing together are ``submitted``, their signatures fixed);
- ``after_swap``: the venue executed the swap, the order is not yet ``confirmed`` in the database;
- ``after_commit``: every order of the batch is stored, the batch's messages are not yet deleted;
- ``after_triggered``: a resting limit order is triggered, and not yet on the orders queue.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

CRASH_POINTS = ("after_routing", "after_swap", "after_commit", "after_triggered")

log = logging.getLogger(__name__)


def _kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: the way an environment really dies


class CrashPoints:
    def __init__(self, at: str | None = None, every: int = 1, kill: Callable[[], None] = _kill_this_process):
        if at is not None and at not in CRASH_POINTS:
            raise ValueError(f"FAULT_CRASH_AT must be one of {', '.join(CRASH_POINTS)}, not {at!r}")
        if every < 1:
            raise ValueError("FAULT_CRASH_EVERY must be at least 1")
        self._at = at
        self._every = every
        self._kill = kill
        self._reached = 0
        self._lock = threading.Lock()

    def reached(self, point: str) -> None:
        if point != self._at:
            return
        with self._lock:
            self._reached += 1
            crash = self._reached % self._every == 0
        if crash:
            log.warning("fault injection: killing this process %s", point)
            self._kill()
