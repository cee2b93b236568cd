"""Deleting by receipt handle, against moto (with the local cloud's fixes in ``infra/local/moto_server.py``) and
LocalStack alike: the messages deleted go, the others stay, and the answers are SQS's."""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def queue(sqs):
    url = sqs.create_queue(QueueName=f"deletes-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def _receive_all(sqs, url: str, visibility: int = 30) -> list[dict]:
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility,
                                       WaitTimeSeconds=0).get("Messages", []):
        received.extend(batch)
    return received


def test_a_batch_delete_removes_those_messages_and_keeps_the_rest(sqs, queue):
    for n in range(30):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{n}")
    received = _receive_all(sqs, queue, visibility=1)
    assert len(received) == 30
    deleted = [m for m in received if int(m["Body"][1:]) % 3 == 0]
    answer = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(deleted)])
    assert len(answer["Successful"]) == 10 and not answer.get("Failed")

    # Once visible again, exactly the 20 that were not deleted come back.
    again = []
    for _ in range(40):
        again.extend(_receive_all(sqs, queue))
        if len(again) >= 20:
            break
        time.sleep(0.25)
    assert sorted(m["Body"] for m in again) == sorted(m["Body"] for m in received if m not in deleted)


def test_deleting_twice_succeeds_and_an_unknown_handle_is_refused(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="once")
    [message] = _receive_all(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])  # SQS: deleting again is fine

    answer = sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "x", "ReceiptHandle": "not-a-handle"}])
    assert [f["Code"] for f in answer["Failed"]] == ["ReceiptHandleIsInvalid"]
    with pytest.raises(ClientError) as refused:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle")
    assert refused.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


def test_a_handle_of_another_queue_deletes_nothing_here(sqs, queue):
    other = sqs.create_queue(QueueName=f"deletes-other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=queue, MessageBody="here")
        sqs.send_message(QueueUrl=other, MessageBody="there")
        [there] = _receive_all(sqs, other)
        answer = sqs.delete_message_batch(QueueUrl=queue,
                                          Entries=[{"Id": "x", "ReceiptHandle": there["ReceiptHandle"]}])
        assert answer.get("Failed") and not answer.get("Successful")
        assert [m["Body"] for m in _receive_all(sqs, queue)] == ["here"]
    finally:
        sqs.delete_queue(QueueUrl=other)


def test_a_long_poll_returns_a_delayed_message_as_its_timer_ends(sqs, queue, emulator, servers):
    """As SQS does: a sniper's pool-open timer must not arrive up to a second late (moto's poll slept whole seconds;
    LocalStack's still does, which the README says)."""
    # From before the send: the timer starts when the emulator takes the message, somewhere in the send's round
    # trip, and it counts whole milliseconds (a message sent at 0.9 ms past one is due 0.9 ms early).
    before_send = time.monotonic()
    sqs.send_message(QueueUrl=queue, MessageBody="opens", DelaySeconds=1)
    time.sleep(0.3)  # the poll starts with nothing visible, as the event source mapping's does
    answer = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)
    waited = time.monotonic() - before_send
    assert [m["Body"] for m in answer["Messages"]] == ["opens"]
    late_by_at_most = 0.25 if emulator == servers.aws_endpoint else 1.25
    assert 0.999 <= waited < 1.0 + late_by_at_most, waited


def test_receives_and_deletes_at_once_never_fail(sqs, queue):
    """moto walked its in-flight messages while a delete on another thread changed them (a 500 to the poller). The
    client does not retry, so a 500 fails the test instead of being hidden by botocore's retries."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    sqs = boto3.session.Session().client("sqs", config=Config(retries={"max_attempts": 1, "mode": "standard"}))

    for start in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": f"m{n}"}
                                                        for n in range(start, start + 10)])

    def drain(_: int) -> int:
        taken = 0
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           VisibilityTimeout=60).get("Messages", []):
            sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                                                              for n, m in enumerate(batch)])
            taken += len(batch)
        return taken

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert sum(pool.map(drain, range(6))) == 300  # every receive answered, every message taken once
