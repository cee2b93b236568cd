"""The market stream: each followed pool's state after every change, as ``pool.update`` frames.

A connection follows some pools or all of them and gets each one's state at once; then, as the venues publish a pool
event (after the transaction that changed the pool committed), every follower of that pool gets its new state. Frames
carry the slot of the change: a follower keeps the highest it saw (the first state and a change may cross).
"""

from __future__ import annotations

from ..domain.markets import PoolSnapshot
from .errors import Invalid
from .ports import Connections, Push, VenueData


class MarketFeed:
    def __init__(self, venues: VenueData, connections: Connections, push: Push):
        self._venues = venues
        self._connections = connections
        self._push = push

    def follow(self, connection_id: str, pool_ids: list[str] | None) -> list[PoolSnapshot]:
        """The connection follows these pools (None: every pool); returns their states, read after it does, for
        the caller to send first (Invalid, and nothing followed, if a pool does not exist)."""
        known = {s.pool.id for s in self._venues.pool_snapshots(pool_ids)}
        unknown = sorted(set(pool_ids or ()) - known)
        if unknown:
            raise Invalid(f"no pool {unknown[0]!r}; GET /pools lists them",
                          [{"field": "poolIds", "message": f"unknown pool {pool_id}"} for pool_id in unknown])
        self._connections.follow_market(connection_id, pool_ids)
        return self._venues.pool_snapshots(pool_ids)  # after following: no change falls between the two

    def pools_changed(self, pool_ids: list[str]) -> int:
        """Sends each changed pool's state to its followers; how many frames were sent."""
        followers = self._connections.market_followers(sorted(set(pool_ids)))
        if not followers:
            return 0  # the common case: nobody watches, one Redis round trip
        sent = 0
        for snapshot in self._venues.pool_snapshots(sorted(followers)):
            message = snapshot.message()
            for connection_id in followers[snapshot.pool.id]:
                if self._push.send(connection_id, message):
                    sent += 1
                else:  # gone (410)
                    self._connections.remove_connection(connection_id)
        return sent
