"""A function's cold start, as Lambda's Init plus first invocation: run in a fresh interpreter, it imports ``app.py``
and invokes one function once, then prints the two durations as JSON.

``python -m infra.bench.cold_start worker|api`` with the cloud's wiring (DATABASE_URL, REDIS_URL, ...) in the
environment. The worker is invoked with a message for an order that does not exist, and the REST API with
``GET /orders/{id}`` for one: each then connects to what it needs and answers, without changing anything.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid

from infra.chalice_config import PROJECT_DIR

MISSING_ORDER = "00000000-0000-4000-8000-000000000000"


def _worker_event() -> dict:
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "cold-start", "body": json.dumps({"orderId": MISSING_ORDER}),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
        "awsRegion": "us-east-1",
    }]}


def _api_event() -> dict:
    path = f"/orders/{MISSING_ORDER}"
    return {
        "resource": "/orders/{order_id}", "path": path, "httpMethod": "GET",
        "headers": {"Host": "127.0.0.1"}, "multiValueHeaders": {}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": {"order_id": MISSING_ORDER},
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/orders/{order_id}", "httpMethod": "GET", "path": f"/api{path}",
                           "stage": "api", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"},
                           "authorizer": {"principalId": "cold-start"}},
    }


def measure(function: str) -> dict[str, float]:
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("app", PROJECT_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    from infra.local.lambda_runtime import LambdaContext  # after the timed import: chalice.local is not the app's

    context = LambdaContext("order-engine-cold-start", timeout_s=30, memory_mb=512)
    if function == "worker":
        response = module.execute_orders(_worker_event(), context)
        assert response == {"batchItemFailures": []}, response
    else:
        response = module.app(_api_event(), context)
        assert response["statusCode"] == 404, response
    invoked = time.perf_counter()
    ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
    return {"import_ms": ms(imported - started), "first_invocation_ms": ms(invoked - imported),
            "total_ms": ms(invoked - started)}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else "worker")))
