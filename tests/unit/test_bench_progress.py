from infra.bench.load import OrderTrace, progress_line


def test_the_progress_line_counts_accepted_completed_and_errors():
    traces = [OrderTrace(0, http_status=202, final_at=2.0), OrderTrace(1, http_status=202), OrderTrace(2),
              OrderTrace(3, http_status=503, error="HTTP 503")]
    assert progress_line(traces, 10.0, 13.0) == "    3.0 s: 2/4 accepted, 1 completed, 1 errors"
    assert progress_line(traces[:3], 10.0, 16.5) == "    6.5 s: 2/3 accepted, 1 completed"
