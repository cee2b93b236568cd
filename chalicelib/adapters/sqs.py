"""SQS: the orders queue the REST API writes and the worker reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .signed_http import Answer, SignedHttp


class SqsOrderQueue:
    """``client`` gives the SQS client when it is first needed (a cold start that sends nothing never makes one)."""

    def __init__(self, client: Callable[[], Any], queue_name: str, queue_url: str | None = None):
        self._sqs = client
        self._name = queue_name
        self._url = queue_url

    @property
    def _client(self) -> Any:
        return self._sqs()

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._client.get_queue_url(QueueName=self._name)["QueueUrl"]
        return self._url

    def enqueue(self, order_id: str, delay_seconds: int = 0) -> None:
        body = json.dumps({"orderId": order_id})
        if delay_seconds > 0:
            self._client.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=min(delay_seconds, 900))
        else:
            self._client.send_message(QueueUrl=self.url, MessageBody=body)

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


class QuickSendSqs:
    """botocore's SQS client, except that ``SendMessage`` (the REST API's one call per order) goes over SQS's JSON
    protocol through ``SignedHttp``: the same request and answer for less than half the CPU. Every other call is
    botocore's own."""

    def __init__(self, client: Any, credentials: Any, http: SignedHttp | None = None):
        self._client = client
        self._endpoint = client.meta.endpoint_url.rstrip("/") + "/"
        self._http = http or SignedHttp("sqs", client.meta.region_name, credentials, read_timeout_s=25)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message(self, QueueUrl: str, MessageBody: str,  # noqa: N803 (botocore's names)
                     DelaySeconds: int | None = None) -> dict[str, Any]:  # noqa: N803
        request: dict[str, Any] = {"QueueUrl": QueueUrl, "MessageBody": MessageBody}
        if DelaySeconds is not None:
            request["DelaySeconds"] = DelaySeconds
        return self.call("SendMessage", request)

    def call(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        """One call of SQS's JSON protocol: its answer as botocore gives it, or botocore's ClientError."""
        response = self._http.post(self._endpoint, json.dumps(request).encode(),
                                   {"Content-Type": "application/x-amz-json-1.0",
                                    "X-Amz-Target": f"AmazonSQS.{action}"})
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:
            answer = {"message": response.data[:200].decode("utf-8", "replace")}
        if response.status >= 300:
            raise _client_error(response, answer, action)
        return answer


def _client_error(response: Answer, answer: dict[str, Any], action: str) -> Exception:
    from botocore.exceptions import ClientError

    # SQS names its errors in the query protocol's words too (x-amzn-query-error), as botocore reports them.
    code = (response.headers.get("x-amzn-query-error") or "").split(";")[0]
    code = code or str(answer.get("__type", "")).rpartition("#")[2] or str(response.status)
    return ClientError({"Error": {"Code": code, "Message": answer.get("message") or answer.get("Message", "")},
                        "ResponseMetadata": {"HTTPStatusCode": response.status}}, action)
