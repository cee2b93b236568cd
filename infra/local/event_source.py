"""The SQS event source mapping, as Lambda runs it.

Pollers long-poll the queue, gather a batch (``batch_size`` and ``maximum_batching_window_in_seconds`` from the
``on_sqs_message`` decorator), invoke the function and then delete only the records that succeeded. With
``ReportBatchItemFailures`` the records listed in ``batchItemFailures`` stay in the queue and come back after
their visibility timeout (and go to the dead-letter queue after ``maxReceiveCount``); an exception, or an entry
without a valid ``itemIdentifier``, fails the whole batch.

Concurrency scales as Lambda's does for SQS: it starts with 5 concurrent invocations, adds more while receives come
back full (a backlog is waiting), at most ``SCALE_UP_PER_S`` a second, up to the maximum concurrency (the event
source's ``MaximumConcurrency``), and gives them back once receives come back empty. As Lambda's pollers do, it
scales with the queue rather than with the invocations: it adds concurrency while a backlog waits even if every
invocation is still busy (an order waits seconds on its venues), instead of only when one finishes and finds
the queue still full.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.sqs import QuickSendSqs

log = logging.getLogger("event-source")

Invoke = Callable[[dict[str, Any]], Any]
INITIAL_CONCURRENCY = 5
SCALE_UP_PER_S = 5.0  # Lambda adds up to 300 concurrent invocations a minute for an SQS source
BACKLOG_SIGNAL_S = 1.0  # a full receive this recent means messages are still waiting


@dataclass(frozen=True)
class SqsSource:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window_s: float


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
            **{k: v for k, v in attributes.items() if k.startswith("Message") or k == "AWSTraceHeader"},
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: Any, batch_ids: set[str]) -> set[str]:
    """The records to leave in the queue, as Lambda reads a ``ReportBatchItemFailures`` response."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()  # no response, or an empty list: the whole batch succeeded
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return batch_ids
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return batch_ids  # an invalid entry fails the whole batch
        failed.add(identifier)
    return failed


def _queue_missing(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class SqsEventSourceMapping:
    def __init__(
        self,
        sqs: Any,
        source: SqsSource,
        invoke: Invoke,
        concurrency: int,
        region: str = "us-east-1",
        poll_wait_s: int = 1,
        recreate_queue: Callable[[], Any] | None = None,
        initial_concurrency: int = INITIAL_CONCURRENCY,
        scale_up_per_s: float = SCALE_UP_PER_S,
    ):
        self._sqs = sqs
        # An emulator that restarts forgets its queues, which AWS never does; the local cloud puts them back.
        self._recreate_queue = recreate_queue
        self._queue_recreated_at = float("-inf")
        self.source = source
        self._invoke = invoke
        self._concurrency = concurrency
        self._initial = min(initial_concurrency, concurrency)
        self._scale_up_per_s = scale_up_per_s
        self._region = region
        self._poll_wait_s = poll_wait_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, list[dict[str, Any]]] = {}  # poller thread -> the batch it is invoking with
        self._lock = threading.Lock()
        self._pollers = 0
        self._backlog_seen_at = float("-inf")  # when a receive last came back full
        self.invocations = 0
        self.deleted = 0
        self.peak_concurrency = 0

    @property
    def concurrency(self) -> int:
        """How many invocations may run at once right now."""
        return self._pollers

    def start(self) -> SqsEventSourceMapping:
        for _ in range(self._initial):
            self._add_poller()
        scaler = threading.Thread(target=self._scale_up, name=f"scaler-{self.source.function_name}", daemon=True)
        with self._lock:
            self._threads.append(scaler)
        scaler.start()
        return self

    def _add_poller(self) -> None:
        with self._lock:
            self._pollers += 1
            self.peak_concurrency = max(self.peak_concurrency, self._pollers)
            name = f"poller-{self.source.function_name}-{len(self._threads)}"
            thread = threading.Thread(target=self._poll, name=name, daemon=True)
            self._threads.append(thread)
        thread.start()

    def _scale_up(self) -> None:
        """While a backlog waits, one more invocation may run at once, ``scale_up_per_s`` times a second, up to the
        maximum. The poller added receives at once, so a backlog that is still there keeps the signal fresh."""
        while not self._stop.wait(1 / self._scale_up_per_s):
            with self._lock:
                grow = (self._pollers < self._concurrency
                        and time.monotonic() - self._backlog_seen_at < BACKLOG_SIGNAL_S)
            if grow:
                self._add_poller()

    def _scale_down(self) -> bool:
        """An empty receive: this poller stops, unless it is one of the initial ones."""
        with self._lock:
            if self._pollers <= self._initial:
                return False
            self._pollers -= 1
            return True

    def stop(self, timeout: float = 3.0) -> None:
        """Stop polling and let invocations under way finish; the batches of those still running at the deadline
        go back to the queue at once (visibility 0) instead of waiting out their visibility timeout."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            unfinished = [m for batch in self._in_flight.values() for m in batch]
            self._in_flight.clear()
        for start in range(0, len(unfinished), 10):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                         for i, m in enumerate(unfinished[start:start + 10])],
            )
        if unfinished:
            log.info("returned %d messages of unfinished invocations to the queue", len(unfinished))

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.source.batching_window_s
        while not self._stop.is_set() and len(batch) < self.source.batch_size:
            wait = self._poll_wait_s if not batch else max(0, int(window_ends - time.monotonic()))
            response = self._sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch.extend(response.get("Messages", []))
            if not batch:
                break  # an empty receive: the caller may give this poller back
            if time.monotonic() >= window_ends:
                break
        return batch

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive_batch()
                if not messages and self._scale_down():
                    return
                if len(messages) >= min(10, self.source.batch_size):
                    with self._lock:
                        self._backlog_seen_at = time.monotonic()
                if messages:
                    self._handle(messages)
            except Exception as error:
                # Undeleted messages come back after their visibility timeout; the function is idempotent.
                log.warning("polling %s failed (%s: %s); retrying in 1 s", self.source.queue_url,
                            type(error).__name__, error)
                if self._recreate_queue is not None and _queue_missing(error):
                    self._recreate_missing_queue()
                self._stop.wait(1)

    def _recreate_missing_queue(self) -> None:
        with self._lock:  # every poller notices; one creates
            if self._recreate_queue is None or time.monotonic() - self._queue_recreated_at < 5:
                return
            self._recreate_queue()
            self._queue_recreated_at = time.monotonic()
        log.warning("the queue was missing (the emulator restarted?) and has been created again")

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.source.queue_arn, self._region) for m in messages]}
        by_id = {m["MessageId"]: m for m in messages}
        self.invocations += 1
        me = threading.get_ident()
        with self._lock:
            self._in_flight[me] = messages
        try:
            result = self._invoke(event)
        except Exception:
            log.exception("%s failed; the whole batch of %d returns after its visibility timeout",
                          self.source.function_name, len(messages))
            return
        finally:
            with self._lock:
                finished = self._in_flight.pop(me, None) is not None
        if not finished:
            return  # stop() already returned this batch to the queue
        failed = failed_message_ids(result, set(by_id))
        succeeded = [m for message_id, m in by_id.items() if message_id not in failed]
        for start in range(0, len(succeeded), 10):
            chunk = succeeded[start:start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.deleted += len(response.get("Successful", []))
            for failure in response.get("Failed", []):
                log.warning("could not delete a processed message: %s", failure)


class QuickPollingSqs(QuickSendSqs):
    """The mapping's two calls per batch, ``ReceiveMessage`` and ``DeleteMessageBatch``, over SQS's JSON protocol
    through ``SignedHttp``, as the engine's ``SendMessage`` goes: the same requests and answers, without the third
    of the worker processes' CPU that botocore spent on them in a 1,000-order burst (py-spy). Every other call is
    botocore's own."""

    def receive_message(self, **request: Any) -> dict[str, Any]:
        return self.call("ReceiveMessage", request)

    def delete_message_batch(self, **request: Any) -> dict[str, Any]:
        return self.call("DeleteMessageBatch", request)
