"""moto's server, with fixes to its SQS found under load: no request's cost grows with the square of the backlog,
a message sent while another is deleted is no longer lost, and routing a request to SQS is not repeated each time.

moto 5.2 recomputes every queue attribute (walking all messages three times) for each message it considers
returning, to read the retention period; a receive therefore costs O(backlog²) and a burst of 1,000 orders spent
more time in moto than in the engine. The retention period is read straight from the queue instead: the same
value, without the walk. A send still reads the queue's attributes, so the walks themselves read the clock once
instead of twice per message. Everything else is moto's own (``python -m moto.server``'s arguments).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.sqs.models import Message, Queue, SQSBackend


def _is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > unix_time()


SQSBackend.is_message_valid_based_on_retention_period = _is_message_valid_based_on_retention_period

_delete_message = Queue.delete_message


def _delete_message_locked(self: Queue, receipt_handle: str) -> None:
    # moto rebuilds the queue's message list without the deleted message and assigns it, outside the lock under
    # which sends append: a message sent meanwhile was dropped (an order then waited for the sweeper). Found by
    # make bench under a burst; deleting under the same lock keeps every sent message.
    with self._messages_lock:
        _delete_message(self, receipt_handle)


Queue.delete_message = _delete_message_locked


# moto's Message.visible and .delayed each read the clock; these read it once per walk, with the same comparisons.
def _ready(message: Message, now: float) -> bool:
    return now > message.visible_at and not now < message.delayed_until


def _walk(keep: Callable[[Message, float], bool]) -> Callable[[Queue], list[Message]]:
    def walk(self: Queue) -> list[Message]:
        now = unix_time_millis()
        return [message for message in self._messages if keep(message, now)]
    return walk


def _count(keep: Callable[[Message, float], bool]) -> property:
    walk = _walk(keep)
    return property(lambda self: len(walk(self)))


Queue.messages = property(_walk(_ready))
Queue.approximate_number_of_messages = _count(_ready)
Queue.approximate_number_of_messages_delayed = _count(lambda message, now: now < message.delayed_until)
Queue.approximate_number_of_messages_not_visible = _count(lambda message, now: not now > message.visible_at)

# Which backend serves a host never changes, but moto matches the host against every service's URL patterns on each
# request, under a lock that all requests share.
_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _remembered_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    known = self.__dict__.setdefault("_backends_by_host", {})
    if host not in known:
        known[host] = _backend_for_host(self, host)
    return known[host]


DomainDispatcherApplication.get_backend_for_host = _remembered_backend_for_host

if __name__ == "__main__":
    # One line per request costs moto a tenth of its time under load; failures are still logged.
    if os.environ.get("LOG_LEVEL", "INFO").upper() != "DEBUG":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    main()
