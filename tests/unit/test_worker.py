import json
import threading
from dataclasses import dataclass

from chalicelib.domain.orders import Status
from chalicelib.services.execution import Batch, RetryLater
from chalicelib.worker import process_order_batch


@dataclass(frozen=True)
class ScriptedOrder:
    id: str


class ScriptedExecutor:
    """Orders o0-o9 exist; those named in ``together`` are market orders just placed. ``outcomes``: an order's
    exception (raised alone, returned together, as the executor does)."""

    def __init__(self, outcomes, together=(), unreadable=None):
        self.outcomes = outcomes
        self.together = set(together)
        self.unreadable = unreadable
        self.executed = []
        self.batches = []
        self._lock = threading.Lock()

    def prepare(self, order_ids):
        if self.unreadable is not None:
            raise self.unreadable
        batch = Batch()
        for order_id in order_ids:
            if order_id not in {f"o{n}" for n in range(10)}:
                batch.unknown.append(order_id)
            elif order_id in self.together and all(o.id != order_id for o in batch.together):
                batch.together.append(ScriptedOrder(order_id))
            else:
                batch.alone.append(ScriptedOrder(order_id))
        return batch

    def execute_together(self, orders):
        self.batches.append([o.id for o in orders])
        with self._lock:
            self.executed.extend(o.id for o in orders)
        return {o.id: self.outcomes.get(o.id, Status.CONFIRMED) for o in orders}

    def execute_order(self, order):
        with self._lock:
            self.executed.append(order.id)
        if order.id in self.outcomes:
            raise self.outcomes[order.id]
        return Status.CONFIRMED


class RecordingRedelivery:
    def __init__(self):
        self.delays = {}

    def retry_later(self, receipt_handle, delay_seconds):
        self.delays[receipt_handle] = delay_seconds


def record(n, body=None):
    return {"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": body or json.dumps({"orderId": f"o{n}"}),
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders", "awsRegion": "us-east-1"}


def test_only_the_records_that_failed_are_reported_and_a_retry_sets_its_backoff():
    executor = ScriptedExecutor({"o1": RetryLater("o1", 4, "venue timeout"), "o2": RuntimeError("db down")})
    redelivery = RecordingRedelivery()
    event = {"Records": [record(0), record(1), record(2), record(3, body="not json")]}
    result = process_order_batch(event, None, executor, redelivery)
    failed = sorted(item["itemIdentifier"] for item in result["batchItemFailures"])
    assert failed == ["m1", "m2", "m3"]
    assert redelivery.delays == {"r1": 4}
    assert sorted(executor.executed) == ["o0", "o1", "o2"]


def test_a_batch_that_fully_succeeds_reports_no_failures():
    result = process_order_batch({"Records": [record(0), record(1)]}, None, ScriptedExecutor({}),
                                 RecordingRedelivery())
    assert result == {"batchItemFailures": []}


def test_a_batch_whose_every_record_failed_is_reported_not_raised():
    executor = ScriptedExecutor({"o0": RetryLater("o0", 2, "venue timeout"), "o1": RuntimeError("db down")})
    result = process_order_batch({"Records": [record(0), record(1)]}, None, executor, RecordingRedelivery())
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == ["m0", "m1"]


def test_market_orders_just_placed_go_together_and_each_keeps_its_own_outcome():
    executor = ScriptedExecutor({"o1": RetryLater("o1", 3, "venue timeout"), "o4": RuntimeError("db down")},
                                together={"o0", "o1", "o2"})
    redelivery = RecordingRedelivery()
    event = {"Records": [record(0), record(1), record(2), record(3), record(4)]}
    result = process_order_batch(event, None, executor, redelivery)
    assert executor.batches == [["o0", "o1", "o2"]]
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == ["m1", "m4"]
    assert redelivery.delays == {"r1": 3}
    assert sorted(executor.executed) == ["o0", "o1", "o2", "o3", "o4"]


def test_a_second_message_of_an_order_in_the_delivery_runs_alone_as_a_second_delivery_would():
    executor = ScriptedExecutor({}, together={"o0"})
    event = {"Records": [record(0), {**record(5), "body": json.dumps({"orderId": "o0"})}]}
    result = process_order_batch(event, None, executor, RecordingRedelivery())
    assert result == {"batchItemFailures": []}
    assert executor.batches == [["o0"]] and executor.executed.count("o0") == 2


def test_a_message_for_no_order_is_dropped_and_a_delivery_that_cannot_be_read_comes_back_whole():
    executor = ScriptedExecutor({})
    result = process_order_batch({"Records": [record(0), {**record(1), "body": json.dumps({"orderId": "nope"})}]},
                                 None, executor, RecordingRedelivery())
    assert result == {"batchItemFailures": []} and executor.executed == ["o0"]
    unreadable = ScriptedExecutor({}, unreadable=RuntimeError("db down"))
    result = process_order_batch({"Records": [record(0), record(1)]}, None, unreadable, RecordingRedelivery())
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == ["m0", "m1"]
    assert unreadable.executed == []
