"""The local cloud's moto hands SQS's JSON protocol straight to moto's SQSResponse (no Flask around it): the same
answers as moto's own application, on the same queues."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from infra.local.moto_server import sqs_json_first

FULL = DomainDispatcherApplication(create_backend_app)
DIRECT = sqs_json_first(FULL)
VARYING = {"x-amzn-requestid", "access-control-allow-origin"}  # a new id per request; CORS, which SDKs ignore


def call(app: Any, action: str, body: Any, target: str = "AmazonSQS") -> tuple[str, dict[str, str], Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "4566", "HTTP_HOST": "127.0.0.1:4566", "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/x-amz-json-1.0", "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data),
        "HTTP_X_AMZ_TARGET": f"{target}.{action}", "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/sqs/aws4_request, "
                              "SignedHeaders=host, Signature=0",
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.update(status=status, headers={k.lower(): v for k, v in headers if k.lower() not in VARYING})

    payload = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def queue_url() -> str:
    return call(FULL, "CreateQueue", {"QueueName": "direct"})[2]["QueueUrl"]


def test_a_message_sent_directly_is_received_through_moto_and_the_other_way_round(queue_url):
    for sender, receiver in ((DIRECT, FULL), (FULL, DIRECT)):
        status, headers, sent = call(sender, "SendMessage", {"QueueUrl": queue_url, "MessageBody": "ü {}"})
        assert status == "200 OK" and headers["content-type"] == "application/x-amz-json-1.0"
        status, _, received = call(receiver, "ReceiveMessage", {"QueueUrl": queue_url, "MaxNumberOfMessages": 10})
        [message] = received["Messages"]
        assert (message["MessageId"], message["Body"], message["MD5OfBody"]) == (
            sent["MessageId"], "ü {}", sent["MD5OfMessageBody"])
        assert call(receiver, "DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": [
            {"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]})[2] == {"Successful": [{"Id": "0"}], "Failed": []}


@pytest.mark.parametrize(("action", "body"), [
    ("SendMessage", {"QueueUrl": "http://127.0.0.1:4566/000000000000/missing", "MessageBody": "x"}),
    ("SendMessage", {"QueueUrl": "{queue}"}),  # no body: moto fails (TypeError) either way
    ("ReceiveMessage", {"QueueUrl": "{queue}", "MaxNumberOfMessages": 11}),
    ("DeleteMessageBatch", {"QueueUrl": "{queue}", "Entries": [{"Id": "0", "ReceiptHandle": "nope"}]}),
    ("NoSuchAction", {"QueueUrl": "{queue}"}),  # botocore's model has no such operation: raised either way
    ("GetQueueAttributes", {"QueueUrl": "{queue}", "AttributeNames": ["VisibilityTimeout"]}),
])
def test_answers_are_moto_own_refusals_included(queue_url, action, body):
    given = json.loads(json.dumps(body).replace("{queue}", queue_url))
    assert outcome(DIRECT, action, given) == outcome(FULL, action, given)


def outcome(app: Any, action: str, body: Any) -> Any:
    """The answer, or what moto raised (its server then answers 500, as waitress does for an uncaught error)."""
    try:
        return call(app, action, body)
    except Exception as error:  # noqa: BLE001  # moto's own failures, compared between the two paths
        return type(error)


def test_anything_but_sqs_json_goes_through_moto_application(queue_url):
    assert call(DIRECT, "ListQueues", {}, target="Other") == call(FULL, "ListQueues", {}, target="Other")
