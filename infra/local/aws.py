"""The AWS resources the app expects, created idempotently in the emulator."""

from __future__ import annotations

import json
from typing import Any

MAX_RECEIVE_COUNT = 5


def ensure_orders_queues(sqs: Any, name: str, worker_timeout_s: int) -> tuple[str, str]:
    """The orders queue and its dead-letter queue; returns (queue URL, queue ARN)."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {
        # At least six times the worker's timeout, as AWS recommends for a Lambda event source.
        "VisibilityTimeout": str(6 * worker_timeout_s),
        "MaximumMessageSize": str(256 * 1024),
        "MessageRetentionPeriod": "345600",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
    }
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # also brings an older queue up to date
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
