"""SQS: the orders queue the REST API writes and the worker reads."""

from __future__ import annotations

import json
from typing import Any


class SqsOrderQueue:
    def __init__(self, client: Any, queue_name: str, queue_url: str | None = None):
        self._client = client
        self._name = queue_name
        self._url = queue_url

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._client.get_queue_url(QueueName=self._name)["QueueUrl"]
        return self._url

    def enqueue(self, order_id: str) -> None:
        self._client.send_message(QueueUrl=self.url, MessageBody=json.dumps({"orderId": order_id}))

    def retry_later(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again after ``delay_seconds`` (SQS allows up to 12 hours)."""
        self._client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=min(delay_seconds, 43_200)
        )

    def depth(self) -> dict[str, int]:
        """Approximate message counts: waiting (visible), being worked on (in flight) and delayed."""
        attributes = self._client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def ping(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
