"""The venues' pool events, published only for the pools someone listens to, as a chain's subscribers ask for the
accounts they watch instead of reading every log.

A pool event has two readers: the trigger, which first asks whether any order of the pool's pair rests (and stops
there when none does), and the market stream, which first asks whether anyone follows the pool. The same two
questions are asked here, once the swaps that changed the pools have committed, before the event is sent: under
market orders alone nobody listens, and each delivery's event would cost a send, a receive, a delete and an
invocation that reads two indexes to do nothing (~3.5 CPU-ms a delivery over every process, measured in a
1,000-order burst).

Asked after the commit, the questions miss nothing the trigger would have found: an order that starts resting
after them is checked by its own placement on the pools as they are then (changed already), as it is when it
starts resting after the trigger's own read; a connection that follows a pool after them gets the pool's state
when it does. When a question cannot be answered (the database or Redis is away) the event is sent as before.
"""

from __future__ import annotations

import logging

from .ports import Connections, KeepChanges, PoolEvents, RestingOrders

log = logging.getLogger(__name__)


class WatchedPoolEvents:
    """``PoolEvents`` that publish, at each flush, only the changed pools of a pair with resting orders or with a
    follower of their own."""

    def __init__(self, events: PoolEvents, resting: RestingOrders, connections: Connections):
        self._events = events
        self._resting = resting
        self._connections = connections

    def changed(self, pool_id: str, base: str, quote: str) -> None:
        self._events.changed(pool_id, base, quote)

    def flush(self, keep: KeepChanges | None = None) -> int:
        """Publishes the watched changes collected so far (among those ``keep`` returns, if given); how many pools
        the event named."""
        return self._events.flush(self._watched if keep is None else lambda changed: self._watched(keep(changed)))

    def wake(self, base: str, quote: str, delay_seconds: int) -> None:
        self._events.wake(base, quote, delay_seconds)

    def _watched(self, changed: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        try:
            resting = {pair for pair in set(changed.values()) if self._resting.any_resting(*pair)}
            unanswered = sorted(pool_id for pool_id, pair in changed.items() if pair not in resting)
            followed = self._connections.market_followers(unanswered) if unanswered else {}
        except Exception as error:  # noqa: BLE001  # not knowing who listens, everyone may: send them all
            log.warning("pool events sent unfiltered: %s", type(error).__name__)
            return changed
        return {pool_id: pair for pool_id, pair in changed.items() if pair in resting or pool_id in followed}
