"""The local cloud's ledger of what AWS bills, and the bench's pricing of it (issue 21's cost report)."""

import json

import pytest

from infra.bench.costs import cost_report, function_memory_mb, summary_lines
from infra.local.ledger import API_GATEWAY, CONNECTIONS_POST, LAMBDA, REST_REQUEST, SQS, Ledger, Tally, read_from, tally


def test_every_process_appends_whole_lines_and_the_bench_reads_those_after_its_start(tmp_path):
    path = tmp_path / "ledger.tsv"
    api, worker = Ledger(str(path)), Ledger(str(path))  # two processes, one file
    api.record(LAMBDA, "api_handler", 12.5)
    start = path.stat().st_size
    worker.record(LAMBDA, "execute_orders", 40)
    api.record(LAMBDA, "api_handler", 7.5)
    worker.record(SQS, "ReceiveMessage")
    counted = tally(read_from(path, start))
    assert counted == {(LAMBDA, "execute_orders"): Tally(1, 40.0), (LAMBDA, "api_handler"): Tally(1, 7.5),
                       (SQS, "ReceiveMessage"): Tally(1, 0.0)}


def test_a_ledger_without_a_file_counts_nothing():
    ledger = Ledger(None)
    ledger.record(LAMBDA, "api_handler", 1)
    assert not ledger.enabled


def test_a_burst_is_priced_from_its_invocations_memory_and_requests(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lambda_memory_size": 512,
                                  "lambda_functions": {"execute_orders": {"lambda_memory_size": 1024}}}))
    memory = function_memory_mb(config)
    ledger = {
        (LAMBDA, "api_handler"): Tally(1000, 9500.0),  # 9.5 ms each, billed 10 (half a ms of rounding each)
        (LAMBDA, "execute_orders"): Tally(100, 99950.0),  # 999.5 ms each at 1 GB: 100 GB-s
        (SQS, "SendMessage"): Tally(1200, 0), (SQS, "ReceiveMessage"): Tally(300, 0),
        (API_GATEWAY, REST_REQUEST): Tally(1000, 0), (API_GATEWAY, CONNECTIONS_POST): Tally(5000, 0),
    }
    report = cost_report(ledger, 1000, memory)
    assert report["functions_per_1000_orders"]["api_handler"] == {"requests": 1000, "gb_seconds": 5.0,
                                                                  "memory_mb": 512, "mean_ms": 9.5}
    assert report["functions_per_1000_orders"]["execute_orders"]["gb_seconds"] == 100.0
    assert report["sqs_requests_per_order"] == {"ReceiveMessage": 0.3, "SendMessage": 1.2}
    assert report["connections_posts_per_order"] == 5 and report["rest_requests_per_order"] == 1
    dollars = report["dollars_per_million_orders"]
    # Lambda: 105 GB-s x $0.0000166667 + 1,100 requests x $0.20/M, for 1,000 orders; a million is 1,000 times that.
    assert dollars["lambda"] == pytest.approx((105 * 0.0000166667 + 1100 * 0.2e-6) * 1000, abs=0.01)
    assert dollars["api_gateway_rest"] == 3.5 and dollars["api_gateway_websocket"] == 5.0
    assert dollars["sqs"] == pytest.approx(1.5 * 0.40, abs=0.01)
    assert dollars["total"] == pytest.approx(sum(v for k, v in dollars.items() if k != "total"), abs=0.01)
    assert [line.split()[0] for line in summary_lines(report)] == ["AWS", "AWS", "AWS"]


def test_the_emulators_requests_are_counted_by_action_only_when_the_ledger_is_on(tmp_path):
    from infra.local.moto_server import counted

    def app(environ, start_response):
        return [b"ok"]

    assert counted(app, Ledger(None)) is app
    path = tmp_path / "ledger.tsv"
    counting = counted(app, Ledger(str(path)))
    assert counting({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, None) == [b"ok"]
    counting({"QUERY_STRING": "Action=DeleteMessageBatch&Version=2012-11-05"}, None)
    counting({}, None)  # the query protocol with its action in the form body
    assert tally(read_from(path, 0)) == {(SQS, "ReceiveMessage"): Tally(1, 0.0),
                                         (SQS, "DeleteMessageBatch"): Tally(1, 0.0), (SQS, "query"): Tally(1, 0.0)}
