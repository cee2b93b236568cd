"""The SQS worker: Powertools' batch processor around the executor, reporting partial batch failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeAlias

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import logs
from .domain.orders import Order, Status
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

    The delivery's orders are read at once. The market orders just placed advance together (each step one
    statement for all of them, their swaps one slot on the venues); every other order advances alone. Orders spend
    most of their time waiting on venues, so all of them run side by side; the processor then collects each
    record's outcome in order.
    """
    records = event.get("Records", [])
    keys = logs.current_keys()  # each thread logs with the invocation's request id (and its order's id)
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix="record") as pool:
        outcomes = _start(executor, records, keys, pool)

        def settle(record: SQSRecord) -> None:
            outcome = outcomes[record.message_id]()
            if isinstance(outcome, Exception):
                _report(outcome, redelivery, record.raw_event)

        response = dict(process_partial_response(
            event=event, record_handler=settle, processor=_processor(), context=context
        ))
    checkpoint("after_commit")  # every order is stored; the messages are deleted only once this returns
    if metrics is not None:
        metrics.record(dead_lettered(_last_deliveries_failed(records, response)))
    return response


Outcome: TypeAlias = "Status | Exception | None"


def _start(executor: Executor, records: list[dict[str, Any]], keys: dict[str, Any], pool: ThreadPoolExecutor,
           ) -> dict[str, Callable[[], Outcome]]:
    """Starts every record's order; for each message id, what waits for its outcome: the status its order was left
    in, None (moved on by another delivery, or no such order), or the exception that stopped it."""
    order_ids = {record["messageId"]: _order_id(record) for record in records}
    try:
        batch = executor.prepare([order_id for order_id in order_ids.values() if order_id is not None])
    except Exception as error:  # noqa: BLE001  # the orders could not be read: every record comes back
        return {message_id: partial(_given, error) for message_id in order_ids}
    joining = {order.id for order in batch.together}
    alone: dict[str, list[Order]] = {}
    for order in batch.alone:
        alone.setdefault(order.id, []).append(order)
    waiting: dict[str, Callable[[], Outcome]] = {}
    together: dict[str, Outcome] = {}
    for message_id, order_id in order_ids.items():
        if order_id is None:
            waiting[message_id] = partial(_given, ValueError("the message body has no orderId"))
        elif order_id in joining:
            joining.discard(order_id)  # a second message of the order runs alone
            waiting[message_id] = partial(_outcome_of, together, order_id)
        elif alone.get(order_id):
            waiting[message_id] = pool.submit(_execute_alone, executor, alone[order_id].pop(0), message_id,
                                              keys).result
        else:
            waiting[message_id] = partial(_given, None)  # no such order: its message is dropped
    # In this thread, while the others run alone in the pool's: starting a thread for them cost each delivery
    # about 0.1 CPU-ms (measured).
    if batch.together:
        together.update(executor.execute_together(batch.together))
    return waiting


def _execute_alone(executor: Executor, order: Order, message_id: str, keys: dict[str, Any]) -> Outcome:
    with logs.carried(keys, orderId=order.id, messageId=message_id):
        try:
            return executor.execute_order(order)
        except Exception as error:  # noqa: BLE001  # the record's outcome, reported when it is settled
            return error


def _outcome_of(together: dict[str, Outcome], order_id: str) -> Outcome:
    return together.get(order_id)


def _given(outcome: Outcome) -> Outcome:
    return outcome


def _report(error: Exception, redelivery: Redelivery, record: dict[str, Any]) -> None:
    """Raises the record's failure for the processor to report, after asking for the backoff a retry wants."""
    order_id = _order_id(record)
    if isinstance(error, RetryLater):
        redelivery.retry_later(record["receiptHandle"], error.delay_seconds)
    elif order_id is not None:
        # The message comes back after its visibility timeout; say why, or a slow order is a mystery.
        log.warning("order %s failed this delivery (%s: %s); SQS redelivers it", order_id, type(error).__name__,
                    error, extra={"orderId": order_id})
    raise error


def _last_deliveries_failed(records: list[dict[str, Any]], response: dict[str, Any]) -> int:
    """Records that failed on their last delivery: SQS moves their messages to the dead-letter queue."""
    failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
    return sum(1 for record in records if record.get("messageId") in failed and
               int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1")) >= MAX_RECEIVE_COUNT)


def _processor() -> BatchProcessor:
    # A batch whose every record failed is reported like any other, rather than raised: the outcome for SQS is the
    # same, and the log does not show a retried order as a crashed invocation.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _order_id(record: dict[str, Any]) -> str | None:
    try:
        order_id = json.loads(record["body"]).get("orderId")
    except (ValueError, AttributeError, KeyError):
        return None
    return order_id if isinstance(order_id, str) else None
