"""The SQS worker: Powertools' batch processor around the executor, reporting partial batch failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import logs
from .domain.telemetry import dead_lettered
from .services.execution import Executor, RetryLater
from .services.ports import MetricsSink, Redelivery
from .settings import MAX_RECEIVE_COUNT

log = logging.getLogger(__name__)


def process_order_batch(
    event: dict[str, Any],
    context: Any,
    executor: Executor,
    redelivery: Redelivery,
    checkpoint: Callable[[str], None] = lambda step: None,
    metrics: MetricsSink | None = None,
) -> dict[str, Any]:
    """Executes each record's order; a record whose processing raised is returned in ``batchItemFailures``
    so SQS redelivers it alone: after its visibility timeout, or after the backoff a ``RetryLater`` asks for.

    Orders spend most of their time waiting on venues, so the records run side by side; the processor then
    collects each one's outcome in order.
    """
    records = event.get("Records", [])
    keys = logs.current_keys()  # each record's thread logs with the invocation's request id, and its order's id
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix="record") as pool:
        running: dict[str, Future] = {
            record["messageId"]: pool.submit(_execute, executor, redelivery, record, keys)
            if _is_order(record) else _failed(ValueError("the message body has no orderId"))
            for record in records
        }

        def settle(record: SQSRecord) -> None:
            running[record.message_id].result()  # re-raises the record's failure for the processor to report

        response = dict(process_partial_response(
            event=event, record_handler=settle, processor=_processor(), context=context
        ))
    checkpoint("after_commit")  # every order is stored; the messages are deleted only once this returns
    if metrics is not None:
        metrics.record(dead_lettered(_last_deliveries_failed(records, response)))
    return response


def _last_deliveries_failed(records: list[dict[str, Any]], response: dict[str, Any]) -> int:
    """Records that failed on their last delivery: SQS moves their messages to the dead-letter queue."""
    failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
    return sum(1 for record in records if record.get("messageId") in failed and
               int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1")) >= MAX_RECEIVE_COUNT)


def _processor() -> BatchProcessor:
    # A batch whose every record failed is reported like any other, rather than raised: the outcome for SQS is the
    # same, and the log does not show a retried order as a crashed invocation.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _execute(executor: Executor, redelivery: Redelivery, record: dict[str, Any], keys: dict[str, Any]) -> None:
    order_id = json.loads(record["body"])["orderId"]
    with logs.carried(keys, orderId=order_id, messageId=record.get("messageId")):
        _execute_order(executor, redelivery, record, order_id)


def _execute_order(executor: Executor, redelivery: Redelivery, record: dict[str, Any], order_id: str) -> None:
    try:
        executor.execute(order_id)
    except RetryLater as retry:
        redelivery.retry_later(record["receiptHandle"], retry.delay_seconds)
        raise
    except Exception as error:
        # The message comes back after its visibility timeout; say why, or a slow order is a mystery.
        log.warning("order %s failed this delivery (%s: %s); SQS redelivers it", order_id, type(error).__name__,
                    error)
        raise


def _is_order(record: dict[str, Any]) -> bool:
    try:
        return isinstance(json.loads(record["body"]).get("orderId"), str)
    except (ValueError, AttributeError):
        return False


def _failed(error: Exception) -> Future:
    future: Future = Future()
    future.set_exception(error)
    return future
