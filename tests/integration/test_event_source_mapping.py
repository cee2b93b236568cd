"""The local SQS event source mapping against the real emulator: partial batch failures and redrive."""

import json
import threading
import time
import uuid

import boto3

from infra.local.aws import ensure_orders_queues
from infra.local.event_source import QuickPollingSqs, SqsEventSourceMapping, SqsSource


def make_queue(sqs, visibility=1, max_receive=5):
    name = f"test-{uuid.uuid4().hex[:8]}"
    url, arn = ensure_orders_queues(sqs, name, worker_timeout_s=1)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn.replace(name, f"{name}-dlq"),
                                     "maxReceiveCount": str(max_receive)}),
    })
    return name, url, arn


class Recorder:
    """A function that fails chosen records the first times they arrive, and records every call."""

    def __init__(self, fail_times: dict[str, int], raise_whole_batch_once: bool = False):
        self.fail_times = dict(fail_times)
        self.raise_once = raise_whole_batch_once
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, event):
        bodies = [r["body"] for r in event["Records"]]
        with self.lock:
            self.calls.append(bodies)
            if self.raise_once:
                self.raise_once = False
                raise RuntimeError("the function crashed")
            failures = []
            for record in event["Records"]:
                if self.fail_times.get(record["body"], 0) > 0:
                    self.fail_times[record["body"]] -= 1
                    failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def deliveries(self, body):
        return sum(batch.count(body) for batch in self.calls)


def polling(sqs):
    """The mapping's client as the local cloud gives it: receives and deletes over SQS's JSON protocol."""
    return QuickPollingSqs(sqs, boto3.session.Session().get_credentials())


def run_mapping(sqs, url, arn, function, until, batch_size=10, timeout=20):
    source = SqsSource("test_fn", url, arn, batch_size, 0.5)
    mapping = SqsEventSourceMapping(polling(sqs), source, function, concurrency=2).start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until():
            time.sleep(0.1)
    finally:
        mapping.stop()
    return mapping


def depth(sqs, url):
    # Approximate, as on AWS: LocalStack reads its visible and in-flight counts without its queue's lock, so a
    # message moving between the two can make a busy queue read 0 for an instant. Stop conditions therefore wait for
    # the deliveries they assert first, and read the depth last.
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_one_failing_record_in_a_batch_is_retried_alone(sqs):
    _, url, arn = make_queue(sqs)
    bodies = [f"m{i}" for i in range(5)]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": b, "MessageBody": b} for b in bodies])
    function = Recorder({"m2": 1})
    run_mapping(sqs, url, arn, function, until=lambda: function.deliveries("m2") >= 2 and depth(sqs, url) == 0)
    assert function.deliveries("m2") == 2
    assert all(function.deliveries(b) == 1 for b in bodies if b != "m2")
    retry_batches = [batch for batch in function.calls if "m2" in batch][1:]
    assert retry_batches == [["m2"]]  # the retry carries the failed record and nothing else
    assert depth(sqs, url) == 0


def test_a_crashed_invocation_returns_the_whole_batch(sqs):
    _, url, arn = make_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"x{i}", "MessageBody": f"x{i}"} for i in range(3)])
    function = Recorder({}, raise_whole_batch_once=True)

    def every_record_delivered_and_the_crashed_ones_again():
        calls = list(function.calls)
        return (bool(calls) and all(function.deliveries(b) >= 2 for b in calls[0])
                and all(function.deliveries(f"x{i}") >= 1 for i in range(3)) and depth(sqs, url) == 0)

    run_mapping(sqs, url, arn, function, until=every_record_delivered_and_the_crashed_ones_again)
    crashed = function.calls[0]
    assert crashed and all(function.deliveries(b) == 2 for b in crashed)
    assert all(function.deliveries(f"x{i}") == 1 for i in range(3) if f"x{i}" not in crashed)
    assert depth(sqs, url) == 0


def test_a_record_that_keeps_failing_ends_in_the_dead_letter_queue(sqs):
    name, url, arn = make_queue(sqs, max_receive=2)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    function = Recorder({"poison": 100})
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    run_mapping(sqs, url, arn, function, until=lambda: depth(sqs, dlq_url) == 1, timeout=30)
    assert function.deliveries("poison") == 2
    assert depth(sqs, dlq_url) == 1 and depth(sqs, url) == 0


def test_batches_respect_the_batch_size(sqs):
    _, url, arn = make_queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"b{i}", "MessageBody": f"b{i}"} for i in range(7)])
    function = Recorder({})
    run_mapping(sqs, url, arn, function, batch_size=3,
                until=lambda: sum(len(batch) for batch in list(function.calls)) >= 7 and depth(sqs, url) == 0)
    assert max(len(batch) for batch in function.calls) <= 3
    assert sorted(b for batch in function.calls for b in batch) == sorted(f"b{i}" for i in range(7))


def test_stopping_returns_the_messages_of_unfinished_invocations_at_once(sqs):
    _, url, arn = make_queue(sqs, visibility=300)
    sqs.send_message(QueueUrl=url, MessageBody="long")
    started = threading.Event()

    def slow(event):
        started.set()
        time.sleep(30)  # still running when the mapping stops

    mapping = SqsEventSourceMapping(polling(sqs), SqsSource("slow_fn", url, arn, 10, 0), slow, concurrency=1).start()
    assert started.wait(10)
    mapping.stop(timeout=0.5)
    received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in received] == ["long"]  # back at once, not after the 300 s visibility timeout


def test_concurrency_grows_with_a_backlog_up_to_the_maximum_and_shrinks_once_it_is_gone(sqs):
    _, url, arn = make_queue(sqs, visibility=30)
    running, most = 0, 0
    lock = threading.Lock()

    def slow(event):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.5)  # a venue's latency: waiting, not working
        with lock:
            running -= 1

    mapping = SqsEventSourceMapping(polling(sqs), SqsSource("slow_fn", url, arn, 10, 0), slow, concurrency=8,
                                    poll_wait_s=0).start()
    try:
        assert mapping.concurrency == 5  # Lambda's starting point, before any message arrives
        for start in range(0, 200, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"}
                                                          for i in range(10)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (depth(sqs, url) > 0 or mapping.deleted < 200):
            time.sleep(0.1)
        assert mapping.deleted == 200
        assert mapping.peak_concurrency == 8 and 5 < most <= 8  # grew to the maximum, never past it
        deadline = time.monotonic() + 10
        shrunk = False
        while time.monotonic() < deadline and not shrunk:
            shrunk = mapping.concurrency == 5  # empty receives gave the extra invocations back
            time.sleep(0.1)
        assert shrunk
    finally:
        mapping.stop()


def test_concurrency_grows_while_every_invocation_is_still_busy(sqs):
    # Lambda's pollers watch the queue: a backlog adds invocations even when none has finished yet.
    _, url, arn = make_queue(sqs, visibility=30)
    release, started, finished = threading.Event(), [], []

    def busy(event):
        started.append(len(event["Records"]))
        release.wait(20)
        finished.append(len(event["Records"]))

    mapping = SqsEventSourceMapping(polling(sqs), SqsSource("busy_fn", url, arn, 10, 0), busy, concurrency=8,
                                    poll_wait_s=0).start()
    try:
        for start in range(0, 200, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"}
                                                          for i in range(10)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(started) < 8:
            time.sleep(0.05)
        assert len(started) == 8 and not finished and mapping.concurrency == 8
        release.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and mapping.deleted < 200:
            time.sleep(0.1)
        assert mapping.deleted == 200
    finally:
        release.set()
        mapping.stop()


def test_redrive_moves_dead_lettered_messages_back_whole(sqs):
    from infra.local.aws import redrive

    name, url, _ = make_queue(sqs)
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    bodies = [json.dumps({"orderId": f"o{i}"}) for i in range(13)]
    for start in (0, 10):
        sqs.send_message_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "MessageBody": b, "MessageAttributes": {"why": {"DataType": "String", "StringValue": "x"}}}
            for i, b in enumerate(bodies[start:start + 10])
        ])
    assert redrive(sqs, dlq_url, url) == 13
    assert depth(sqs, dlq_url) == 0
    moved = []
    while len(moved) < 13:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        assert batch
        moved.extend(batch)
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert all(m["MessageAttributes"]["why"]["StringValue"] == "x" for m in moved)
