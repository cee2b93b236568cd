"""The AWS resources the app expects, created idempotently in the emulator."""

from __future__ import annotations

import json
import os
from typing import Any

from .. import queues


def visibility_timeout(worker_timeout_s: int) -> int:
    """As on AWS; fault-injection tests shorten it with ``LOCAL_VISIBILITY_TIMEOUT_SECONDS`` so that a killed
    invocation's messages come back within seconds."""
    return int(os.environ.get("LOCAL_VISIBILITY_TIMEOUT_SECONDS") or queues.visibility_timeout(worker_timeout_s))


def ensure_orders_queues(sqs: Any, name: str, worker_timeout_s: int) -> tuple[str, str]:
    """The orders queue and its dead-letter queue; returns (queue URL, queue ARN)."""
    dlq_attributes = {"MessageRetentionPeriod": str(queues.DEAD_LETTER_RETENTION_SECONDS)}
    dlq_url = sqs.create_queue(QueueName=queues.dead_letter_queue_name(name), Attributes=dlq_attributes)["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    attributes = {
        "VisibilityTimeout": str(visibility_timeout(worker_timeout_s)),
        "MaximumMessageSize": str(queues.MAX_MESSAGE_BYTES),
        "MessageRetentionPeriod": str(queues.RETENTION_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queues.MAX_RECEIVE_COUNT)}),
    }
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # also brings an older queue up to date
    return url, queue_arn(sqs, url)


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def redrive(sqs: Any, source_url: str, target_url: str, limit: int = 10_000) -> int:
    """Moves dead-lettered messages back to their queue (each is sent before it is deleted, so none is lost);
    returns how many moved. On AWS, ``aws sqs start-message-move-task`` does the same."""
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"], VisibilityTimeout=30).get("Messages", [])
        if not messages:
            return moved
        sqs.send_message_batch(QueueUrl=target_url, Entries=[
            {"Id": str(i), "MessageBody": m["Body"], **({"MessageAttributes": m["MessageAttributes"]}
                                                         if m.get("MessageAttributes") else {})}
            for i, m in enumerate(messages)
        ])
        sqs.delete_message_batch(QueueUrl=source_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ])
        moved += len(messages)
    return moved
