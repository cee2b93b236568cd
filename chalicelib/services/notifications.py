"""Streaming order events to WebSocket subscribers, each exactly once and in ``seq`` order.

Deliveries of one order's events are serialised by a lock, and each subscription remembers the last
``seq`` it was sent. A late subscriber therefore gets the history and then the live events with no gap,
whichever of the worker and the subscribe request runs first.
"""

from __future__ import annotations

from ..domain.orders import OrderEvent
from .ports import Connections, Delivery, Orders, Push


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

    def subscribe(self, connection_id: str, order_id: str) -> None:
        with self._connections.delivery(order_id, joining=connection_id) as delivery:
            assert delivery is not None
            self._deliver(order_id, delivery, [])

    def _deliver(self, order_id: str, delivery: Delivery, known: list[OrderEvent]) -> None:
        if not delivery.cursors:
            return
        behind = min(delivery.cursors.values())
        if not known or behind < known[0].seq - 1:
            known = self._orders.events(order_id, after_seq=behind)
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
