"""``make bench`` itself, on a small load: it starts its own cloud, follows every order and writes its figures."""

import json

import pytest

from infra.bench.__main__ import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_benchmark_reports_every_figure_and_loses_nothing(tmp_path, capsys):
    code = main(["--orders", "30", "--concurrency", "10", "--venue-latency", "1", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "latest.json").read_text())
    assert code == 0, capsys.readouterr().out
    assert result["accepted"] == 30 and result["orders_lost"] == 0
    assert result["subscribers_complete_fraction"] == 1.0
    assert result["final_statuses"] == {"confirmed": 30}
    for figure in ("accept_latency_ms", "submission_to_final_ms", "engine_overhead_ms"):
        assert 0 < result[figure]["p50"] <= result[figure]["p99"]
    assert result["completed_per_s"] > 0 and result["submissions_per_s"] > 0
    assert {"gateway", "worker", "postgres", "valkey", "moto", "bench client"} <= set(result["peak_memory_mib"])
    assert all(v > 0 for v in result["peak_memory_mib"].values())
    assert result["cpu_seconds_per_1000_orders"]["total"] > 0
    assert result["machine"]["python_loop_ms"] > 0 and 0 <= result["machine"]["cpu_stolen_fraction"] < 1
    for function in ("worker", "api"):
        assert result["cold_start_ms"][function]["total_ms"] > 0
    assert (tmp_path / "logs" / "worker.log").exists()
    chart = result["chart"]
    assert chart.endswith(".png") and open(chart, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "orders lost          0" in capsys.readouterr().out


def test_the_limit_scenario_reports_the_triggers_cost_and_latency(tmp_path, capsys):
    code = main(["--scenario", "limit", "--resting", "90", "--orders", "20", "--venue-latency", "1",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    (written,) = tmp_path.glob("bench-*-limit.json")
    result = json.loads(written.read_text())
    assert result["resting"] >= 90  # and one far order per pair
    nothing = result["event_cpu_ms_triggering_nothing"]
    assert len(nothing) == 2 and all(ms > 0 for ms in nothing.values())
    assert result["event_cpu_ms_triggering_k"]["cpu_ms"] > 0
    latency = result["trigger_latency_ms"]
    assert latency["orders"] > 0 and 0 <= latency["p50"] <= latency["p99"]
    assert result["crossed"]["swaps"] > 0
    market = result["market_orders_while_resting"]
    assert market["accepted"] == 20 and market["orders_lost"] == 0 and market["completed_per_s"] > 0
    assert "trigger latency" in out and "market orders" in out
