"""moto's server, with its SQS made to cost the same whatever the queue's backlog, as SQS does.

moto 5.2 recomputes every queue attribute (walking all messages three times) for each message it considers
returning, to read the retention period; a receive therefore costs O(backlog²) and a burst of 1,000 orders spent
more time in moto than in the engine. The retention period is read straight from the queue instead: the same
value, without the walk. Everything else is moto's own (``python -m moto.server``'s arguments).
"""

from __future__ import annotations

from moto.core.utils import unix_time
from moto.server import main
from moto.sqs.models import Message, SQSBackend


def _is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > unix_time()


SQSBackend.is_message_valid_based_on_retention_period = _is_message_valid_based_on_retention_period

if __name__ == "__main__":
    main()
