"""Streaming order events to WebSocket subscribers, each exactly once and in ``seq`` order.

Deliveries of one order's events are serialised by a lock, and each subscription remembers the last
``seq`` it was sent. A late subscriber therefore gets the history and then the live events with no gap,
whichever of the worker and the subscribe request runs first.

An account stream follows every order of a user the same way: it joins each order it has to catch up on (after the
last event the client had, or from the start) and, as each new order is placed, the placement joins it too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..domain.orders import Order, OrderEvent
from .errors import NotFound
from .orders import is_order_id
from .ports import Connections, Delivery, Orders, Push

log = logging.getLogger(__name__)

# Updates of different orders reach a client out of their time order (each order's are pushed by the process that
# stored them, a little later), so the last update a client had does not mean it had every earlier one: an account
# stream catching up replays from this long before its ``since``. The client drops what it has by (orderId, seq).
REPLAY_MARGIN = timedelta(seconds=30)


class Notifier:
    def __init__(self, orders: Orders, connections: Connections, push: Push):
        self._orders = orders
        self._connections = connections
        self._push = push

    def publish(self, order_id: str, new_events: list[OrderEvent]) -> None:
        # An order nobody follows is not locked: a subscriber that registers afterwards reads these events from the
        # database, which has them already.
        with self._connections.delivery(order_id, if_subscribed=True) as delivery:
            if delivery is not None:
                self._deliver(order_id, delivery, new_events)

    def publish_many(self, new_events: dict[str, list[OrderEvent]]) -> None:
        """Publishes the new events of many orders, with the bookkeeping of all of them in one round trip each
        way; an order whose lock another delivery holds is published alone afterwards, once it is free."""
        with self._connections.deliveries(list(new_events)) as (taken, busy):
            for order_id, delivery in taken.items():
                self._deliver(order_id, delivery, new_events[order_id])
        for order_id in busy:
            self.publish(order_id, new_events[order_id])

    def catch_up(self, order_id: str, latest_seq: int) -> bool:
        """Sends subscribers whatever they miss up to ``latest_seq``: events an earlier delivery stored but did
        not push, because it died between the two or Redis was unreachable. True if anyone was behind."""
        cursors = self._connections.subscribers(order_id)
        if not cursors or min(cursors.values()) >= latest_seq:
            return False
        with self._connections.delivery(order_id) as delivery:
            assert delivery is not None
            self._deliver(order_id, delivery, [])
        return True

    def subscribe(self, connection_id: str, order_id: str, after_seq: int | None = None) -> None:
        """The connection follows the order: every event from the first (or after ``after_seq``, unless it is
        further already), then each new one."""
        with self._connections.delivery(order_id, joining=connection_id, from_seq=after_seq) as delivery:
            assert delivery is not None
            self._deliver(order_id, delivery, [])

    def subscribe_own(self, connection_id: str, user_id: str, order_id: str) -> None:
        """The connection follows one of the user's orders, as ``subscribe``; someone else's order, or one that does
        not exist, raises NotFound and leaves nothing behind. The order is read once, after the delivery lock is
        taken (its events must be read then, or one stored meanwhile could be missed), and its owner checked in the
        same read: no update of it reaches the connection before the check, as the lock holds every delivery off."""
        if not is_order_id(order_id):
            raise NotFound(f"order {order_id} not found")
        with self._connections.delivery(order_id, joining=connection_id) as delivery:
            assert delivery is not None
            events = self._orders.own_events(order_id, user_id, after_seq=min(delivery.cursors.values()))
            if events is None:
                self._connections.unsubscribe(connection_id, order_id)
                raise NotFound(f"order {order_id} not found")
            self._send(order_id, delivery, events)

    def subscribe_account(self, connection_id: str, user_id: str, since: datetime | None) -> int:
        """The connection follows every order of the user: first what it may have missed since ``since`` (the
        ``at`` of the last update it had; from REPLAY_MARGIN before it) or, without, every unfinished order from its
        start; then every update as it happens, and each order placed from now on. How many orders it caught up
        on."""
        self._connections.follow_account(connection_id, user_id)  # first: an order placed from here on is joined
        caught_up = self._orders.account_orders(user_id, None if since is None else since - REPLAY_MARGIN)
        for order_id, seen in caught_up.items():
            self.subscribe(connection_id, order_id, after_seq=seen)
        return len(caught_up)

    def created(self, order: Order) -> None:
        """Tells the user's account streams that the order was placed, and has them follow it. An account stream
        that misses it (Redis away) catches up when it reconnects with ``since``: the placement goes on."""
        try:
            for connection_id in self._connections.account_followers(order.user_id):
                if not self._push.send(connection_id, order.created_message()):
                    self._connections.remove_connection(connection_id)
                    continue
                self.subscribe(connection_id, order.id, after_seq=0)
        except Exception as error:  # noqa: BLE001  # the order is placed and queued: never fail its placement
            log.warning("account streams not told of order %s: %s", order.id, type(error).__name__)

    def _deliver(self, order_id: str, delivery: Delivery, known: list[OrderEvent]) -> None:
        if not delivery.cursors:
            return
        behind = min(delivery.cursors.values())
        if not known or behind < known[0].seq - 1:
            known = self._orders.events(order_id, after_seq=behind)
        self._send(order_id, delivery, known)

    def _send(self, order_id: str, delivery: Delivery, known: list[OrderEvent]) -> None:
        """Sends each subscriber the events of ``known`` (every event after the furthest behind) it has not had."""
        for connection_id, last_seq in delivery.cursors.items():
            for event in known:
                if event.seq <= last_seq:
                    continue
                if not self._push.send(connection_id, event.message()):
                    # Gone (410): forget the connection, and this subscription even if its index was lost.
                    self._connections.unsubscribe(connection_id, order_id)
                    self._connections.remove_connection(connection_id)
                    delivery.sent.pop(connection_id, None)
                    break
                delivery.sent[connection_id] = event.seq
