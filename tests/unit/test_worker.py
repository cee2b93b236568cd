import json

from chalicelib.services.execution import RetryLater
from chalicelib.worker import process_order_batch


class ScriptedExecutor:
    def __init__(self, outcomes):
        self.outcomes = outcomes  # order id -> exception to raise, if any
        self.executed = []

    def execute(self, order_id):
        self.executed.append(order_id)
        if order_id in self.outcomes:
            raise self.outcomes[order_id]


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
