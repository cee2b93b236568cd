"""moto's server, with two fixes to its SQS found under load: a receive's cost no longer grows with the square of
the backlog, and a message sent while another is deleted is no longer lost.

moto 5.2 recomputes every queue attribute (walking all messages three times) for each message it considers
returning, to read the retention period; a receive therefore costs O(backlog²) and a burst of 1,000 orders spent
more time in moto than in the engine. The retention period is read straight from the queue instead: the same
value, without the walk. Everything else is moto's own (``python -m moto.server``'s arguments).
"""

from __future__ import annotations

from moto.core.utils import unix_time
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

if __name__ == "__main__":
    main()
