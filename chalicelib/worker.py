"""The SQS worker: Powertools' batch processor around the executor, reporting partial batch failures."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .services.execution import Executor


def process_order_batch(event: dict[str, Any], context: Any, executor: Executor) -> dict[str, Any]:
    """Executes each record's order; a record whose processing raised is returned in ``batchItemFailures``
    so SQS redelivers it alone."""

    def execute(record: SQSRecord) -> None:
        executor.execute(json.loads(record.body)["orderId"])

    return process_partial_response(
        event=event, record_handler=execute, processor=BatchProcessor(event_type=EventType.SQS), context=context
    )
