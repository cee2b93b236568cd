"""The orders queue's settings, one definition for the local emulator and the CDK stack alike."""

from __future__ import annotations

from chalicelib.settings import MAX_RECEIVE_COUNT  # the worker counts the deliveries that were a message's last

__all__ = ["MAX_RECEIVE_COUNT", "dead_letter_queue_name", "visibility_timeout"]
VISIBILITY_TIMEOUT_FACTOR = 6  # AWS's advice for a Lambda event source: six times the function's timeout
RETENTION_SECONDS = 4 * 24 * 60 * 60
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 60 * 60  # the longest SQS keeps a message: time to look and redrive
MAX_MESSAGE_BYTES = 256 * 1024


def visibility_timeout(worker_timeout_s: int) -> int:
    return VISIBILITY_TIMEOUT_FACTOR * worker_timeout_s


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}-dlq"
