"""Logs and business metrics: what each order event measures, the EMF lines on AWS, and JSON log lines that carry
their invocation's keys and no other's."""

from __future__ import annotations

import io
import json
import logging
import threading
from contextlib import redirect_stdout
from datetime import timedelta
from types import SimpleNamespace

import pytest

from chalicelib import logs
from chalicelib.adapters.emf_metrics import EmfMetrics
from chalicelib.domain.orders import Status
from chalicelib.domain.telemetry import Measurement, dead_lettered, order_measurements
from chalicelib.worker import _last_deliveries_failed
from tests.fakes import FakeMetrics
from tests.unit.test_services import FULL, World


class MeasuredWorld(World):
    def __init__(self) -> None:
        super().__init__()
        from chalicelib.services.execution import Executor
        from chalicelib.services.orders import OrderService

        self.metrics = FakeMetrics()
        self.service = OrderService(self.orders, self.queue, self.clock, metrics=self.metrics)
        self.executor = Executor(self.orders, self.venues, self.notifier, self.clock, metrics=self.metrics)


def test_an_order_measures_its_placement_its_end_its_time_to_end_and_its_venue_time():
    world = MeasuredWorld()
    order = world.place()
    world.clock.current += timedelta(seconds=3)
    world.executor.execute(order.id)
    assert world.statuses(order.id) == FULL
    names = world.metrics.names()
    assert names.count("OrdersPlaced") == 1 and names.count("OrdersConfirmed") == 1
    placed = next(m for m in world.metrics.recorded if m.name == "OrdersPlaced")
    assert placed.dimensions == (("type", "market"),)
    confirmed = next(m for m in world.metrics.recorded if m.name == "OrdersConfirmed")
    venue = dict(confirmed.dimensions)["venue"]
    assert venue in ("raydium", "meteora") and dict(confirmed.dimensions)["type"] == "market"
    seconds = next(m for m in world.metrics.recorded if m.name == "SecondsToFinalStatus")
    assert seconds.unit == "Seconds" and seconds.value >= 3 and ("status", "confirmed") in seconds.dimensions
    assert all(m.unit == "Milliseconds" for m in world.metrics.recorded if m.name == "VenueTime")


def test_a_cancelled_order_is_measured_as_cancelled():
    world = MeasuredWorld()
    order = world.place()
    world.service.cancel("alice", order.id)
    assert world.metrics.names() == ["OrdersPlaced", "OrdersCancelled", "SecondsToFinalStatus"]
    assert dict(world.metrics.recorded[1].dimensions) == {"type": "market", "venue": "none"}


def test_a_retried_swap_and_a_failure_are_measured():
    world = MeasuredWorld()
    order = world.place()
    events = world.orders.events(order.id)
    retry = events[0].__class__(order.id, 4, Status.SUBMITTED, events[0].at, {"venue": "raydium", "attempt": 2,
                                                                                "retryInSeconds": 2, "venueMs": 40})
    assert [m.name for m in order_measurements(order, retry)] == ["SwapRetries", "VenueTime"]
    failed = events[0].__class__(order.id, 5, Status.FAILED, events[0].at, {"reason": "x"})
    assert [m.name for m in order_measurements(order, failed)] == ["OrdersFailed", "SecondsToFinalStatus"]
    assert dead_lettered(0) == [] and dead_lettered(2)[0].value == 2


def test_a_failure_on_a_messages_last_delivery_counts_as_dead_lettered():
    records = [{"messageId": "a", "attributes": {"ApproximateReceiveCount": "5"}},
               {"messageId": "b", "attributes": {"ApproximateReceiveCount": "4"}},
               {"messageId": "c", "attributes": {"ApproximateReceiveCount": "7"}}]
    response = {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert _last_deliveries_failed(records, response) == 1  # c succeeded; b has deliveries left


def test_on_aws_each_measurement_is_one_emf_line_with_its_own_dimensions(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    out = io.StringIO()
    with redirect_stdout(out):
        EmfMetrics("OrderEngine", "order-engine").record([
            Measurement("OrdersConfirmed", "Count", 1, (("type", "market"), ("venue", "raydium"))),
            Measurement("VenueTime", "Milliseconds", 41.0, (("type", "market"), ("venue", "meteora"))),
        ])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "OrderEngine"
    assert directive["Metrics"] == [{"Name": "OrdersConfirmed", "Unit": "Count"}]
    assert set(directive["Dimensions"][0]) == {"service", "type", "venue"}
    assert first["OrdersConfirmed"] in (1.0, [1.0])
    assert first["venue"] == "raydium" and first["service"] == "order-engine"
    assert second["VenueTime"] in (41.0, [41.0]) and second["venue"] == "meteora"


@pytest.fixture
def captured_logs():
    out = io.StringIO()
    handler = logs.logger.registered_handler
    saved = handler.stream
    handler.setStream(out)
    try:
        yield out
    finally:
        handler.setStream(saved)


def test_every_module_logs_json_lines_with_the_invocations_keys(captured_logs):
    context = SimpleNamespace(aws_request_id="req-1", function_name="order-engine-dev-execute_orders")
    with logs.invocation(context, idempotencyKey="key-9"):
        logs.bind(orderId="order-1")
        logging.getLogger("chalicelib.services.execution").info("order %s %s", "order-1", "confirmed")
    logging.getLogger("chalicelib.worker").warning("after the invocation")
    first, second = (json.loads(line) for line in captured_logs.getvalue().splitlines())
    assert first["message"] == "order order-1 confirmed" and first["level"] == "INFO"
    assert first["function_request_id"] == "req-1" and first["orderId"] == "order-1"
    assert first["idempotencyKey"] == "key-9" and first["service"] == "order-engine"
    assert "orderId" not in second and "function_request_id" not in second


def test_the_keys_of_one_thread_never_reach_another_threads_lines(captured_logs):
    log = logging.getLogger("chalicelib.worker")
    both_bound = threading.Barrier(2)

    def invocation(n: int) -> None:
        with logs.invocation(SimpleNamespace(aws_request_id=f"req-{n}"), connectionId=f"conn-{n}"):
            both_bound.wait()
            log.info("message %s", n)

    threads = [threading.Thread(target=invocation, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for line in captured_logs.getvalue().splitlines():
        record = json.loads(line)
        n = record["message"].split()[-1]
        assert record["function_request_id"] == f"req-{n}" and record["connectionId"] == f"conn-{n}"


def test_a_records_thread_carries_the_invocations_keys_and_its_order(captured_logs):
    with logs.invocation(SimpleNamespace(aws_request_id="req-7")):
        keys = logs.current_keys()
    seen = []

    def record_thread() -> None:
        with logs.carried(keys, orderId="order-7"):
            logging.getLogger("chalicelib.worker").info("executing")
        seen.append(logs.current_keys())

    thread = threading.Thread(target=record_thread)
    thread.start()
    thread.join()
    record = json.loads(captured_logs.getvalue())
    assert record["function_request_id"] == "req-7" and record["orderId"] == "order-7"
    assert seen == [{}]


def test_tracing_is_on_only_where_lambda_traces_and_nobody_turned_it_off():
    from chalicelib import tracing

    assert not tracing.enabled({})  # the local cloud, the tests
    assert tracing.enabled({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"})
    assert not tracing.enabled({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "POWERTOOLS_TRACE_DISABLED": "true"})
    with tracing.traced("execute_orders", orderId="o-1"):  # off here: loads nothing, records nothing
        pass
    assert tracing._tracer.cache_info().currsize == 0
