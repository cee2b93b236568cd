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

    def ping(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
