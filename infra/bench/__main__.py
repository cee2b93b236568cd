"""``make bench``: a bounded load through the whole local cloud, and its figures.

It starts a local cloud of its own (fresh data, free ports, the venue latency and failure rate asked for), or
attaches to a running one with ``--attach``; places ``--orders`` orders over HTTP with ``--concurrency`` in flight,
follows each on a WebSocket connection of its own, and then prints the figures and writes them, with a chart, to
``bench-results/``. Every part of the engine is in the path: gateway, SQS, the worker, PostgreSQL, Redis and
``@connections``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from infra.chalice_config import PROJECT_DIR
from infra.local.ledger import LEDGER
from infra.local.processes import free_port, run_loop

from .accounting import Accounting
from .costs import cost_report, function_memory_mb
from .costs import summary_lines as cost_summary
from .load import LoadPlan, order_bodies, run_load, stored_sequences, tokens_for
from .processes import ProcessSampler, python_loop_ms
from .report import chart, figures

RESULTS_DIR = PROJECT_DIR / "bench-results"
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
CLOUD_START_TIMEOUT_S = 180
PROGRESS_EVERY_S = 3.0  # a line of orders accepted and completed so far, while the load runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000, help="orders to place (default 1000)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="orders in flight at once, each from placement to final status (default: all: a burst)")
    parser.add_argument("--venue-latency", metavar="MS", default=None,
                        help="the venues' simulated latency for quotes and swaps, N or LOW-HIGH ms "
                             "(default: the engine's own, 150-250 ms quotes and 2000-3000 ms swaps)")
    parser.add_argument("--failure-rate", type=float, default=0.0,
                        help="share of swaps the venues fail transiently (default 0; retried after a backoff)")
    parser.add_argument("--emulator", choices=("moto", "localstack"), default="moto", help="the SQS emulator")
    parser.add_argument("--worker-concurrency", type=int, default=None,
                        help="the most worker invocations at once (default: the local cloud's)")
    parser.add_argument("--connection-per-order", action="store_true",
                        help="follow each order on a WebSocket connection of its own (default: one per user)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds after which the load stops waiting")
    parser.add_argument("--scenario", choices=("market", "limit", "sniper", "routes"), default="market",
                        help="market: the burst of market orders (default); limit: resting limit orders and the "
                             "trigger (see infra/bench/limit.py); sniper: snipers on one launch, open to swap (see "
                             "infra/bench/sniper.py); routes: the router's gains and CPU on the seeded pools, in "
                             "process (see infra/bench/routes.py)")
    parser.add_argument("--orders-mix", choices=("small", "routed"), default="small",
                        help="market scenario: small orders on one pool each (default), or orders that split over "
                             "pools and hop through a third token")
    parser.add_argument("--routing", choices=("smart", "single"), default="smart",
                        help="market scenario: the orders' routing (single: one pool each)")
    parser.add_argument("--resting", type=int, default=10_000, help="limit scenario: resting orders to place")
    parser.add_argument("--snipers", type=int, default=100, help="sniper scenario: snipers on the launch")
    parser.add_argument("--attach", action="store_true",
                        help="use the local cloud running at --http/--ws instead of starting one; the venue, "
                             "failure and emulator options are then the running cloud's")
    parser.add_argument("--http", default="http://127.0.0.1:8000", help="REST API of a running cloud (--attach)")
    parser.add_argument("--ws", default="ws://127.0.0.1:8001/api", help="WebSocket API of a running cloud (--attach)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LOCAL_DATA_DIR", PROJECT_DIR / ".local")),
                        help="data folder of a running cloud (--attach), for its processes")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON and the chart go")
    args = parser.parse_args(argv)
    if args.orders < 1 or (args.concurrency is not None and args.concurrency < 1):
        parser.error("--orders and --concurrency must be at least 1")
    if not 0 <= args.failure_rate <= 1:
        parser.error("--failure-rate must be between 0 and 1")
    args.concurrency = min(args.concurrency or args.orders, args.orders)
    return args


class BenchCloud:
    """A local cloud started for one run: fresh data in a temporary folder, free ports, stopped afterwards."""

    def __init__(self, args: argparse.Namespace):
        self.data_dir = Path(tempfile.mkdtemp(prefix="order-engine-bench-"))
        self.data_dir.chmod(0o755)  # PostgreSQL runs as nobody when we are root, and keeps its data in here
        self.ports = {name: free_port() for name in ("HTTP_PORT", "WS_PORT", "AWS_EMULATOR_PORT", "PG_PORT",
                                                       "REDIS_PORT")}
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "DATABASE_URL", "REDIS_URL", "DEX_", "LOCAL_DATA_DIR"))}
        env.update({k: str(v) for k, v in self.ports.items()})
        # The terminal's line per request and invocation is for people (make run); the figures leave it out.
        env.update({"LOCAL_DATA_DIR": str(self.data_dir), "AWS_EMULATOR": args.emulator, "LOCAL_QUIET": "1",
                    LEDGER: str(self.data_dir / "ledger.tsv"),
                    "DEX_FAILURE_RATE": str(args.failure_rate), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"})
        if args.venue_latency:
            env["DEX_QUOTE_LATENCY_MS"] = env["DEX_SWAP_LATENCY_MS"] = args.venue_latency
        if args.worker_concurrency:
            env["WORKER_CONCURRENCY"] = str(args.worker_concurrency)
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['HTTP_PORT']}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ports['WS_PORT']}/api"

    def start(self) -> BenchCloud:
        log = open(self.data_dir / "cloud.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "infra.local", "run"], cwd=PROJECT_DIR, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + CLOUD_START_TIMEOUT_S
        while not (self.data_dir / "cloud.json").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local cloud did not start:\n" + (self.data_dir / "cloud.log").read_text())
            time.sleep(0.1)
        return self

    def stop(self, keep_logs: Path) -> None:
        """Stops the cloud, keeps its logs (the last run's) in ``keep_logs`` and forgets its data."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(keep_logs, ignore_errors=True)
        shutil.copytree(self.data_dir / "logs", keep_logs, dirs_exist_ok=True)
        shutil.copy(self.data_dir / "cloud.log", keep_logs / "cloud.log")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def cold_starts(env: dict[str, str]) -> dict[str, Any]:
    """Each function module's cold start, in an interpreter of its own (median of three)."""
    results: dict[str, Any] = {}
    for function in ("worker", "api"):
        runs = []
        for _ in range(3):
            done = subprocess.run([sys.executable, "-m", "infra.bench.cold_start", function], cwd=PROJECT_DIR,
                                  env=env, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                results[function] = {"error": done.stderr.strip().splitlines()[-1:]}
                break
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        else:
            results[function] = sorted(runs, key=lambda r: r["total_ms"])[1]
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    cloud: BenchCloud | None = None
    if args.attach:
        http, ws, data_dir = args.http, args.ws, args.data_dir
    else:
        print(f"starting a local cloud ({args.emulator}, venue latency {args.venue_latency or 'default'} ms, "
              f"failure rate {args.failure_rate:g})...", flush=True)
        cloud = BenchCloud(args).start()
        http, ws, data_dir = cloud.http, cloud.ws, cloud.data_dir
    try:
        described = json.loads((data_dir / "cloud.json").read_text()) if (data_dir / "cloud.json").exists() else {}
        if args.scenario == "limit":
            from .limit import run_limit

            return {"scenario": "limit", **run_limit(args, http, ws, {**os.environ, **described.get("env", {})})}
        if args.scenario == "sniper":
            from .sniper import run_sniper

            return run_sniper(args, http)
        run_id = uuid.uuid4().hex[:8]
        warm_up = min(20, args.orders)
        tokens = tokens_for(args.orders, args.concurrency, run_id)
        run_loop(run_load(LoadPlan(http, ws, warm_up, warm_up, tokens, f"{run_id}-warm",
                                   time.monotonic() + 60)))
        loop_ms = python_loop_ms()
        print(f"placing {args.orders} orders, {args.concurrency} at a time, as {len(tokens)} users...", flush=True)
        accounting = Accounting(data_dir / "ledger.tsv", described.get("env", {}).get("DATABASE_URL")).start()
        sampler = ProcessSampler({**described.get("processes", {}), "bench client": os.getpid()}).start()
        started = time.monotonic()
        traces = run_loop(run_load(LoadPlan(http, ws, args.orders, args.concurrency, tokens, run_id,
                                            started + args.timeout, args.connection_per_order,
                                            progress_every_s=PROGRESS_EVERY_S,
                                            bodies=order_bodies(args.orders_mix, args.routing))))
        load_seconds = time.monotonic() - started
        usage = sampler.stop()
        print("counting what the load did...", flush=True)
        accounted = accounting.stop()  # before the read-back below, which is the bench's own
        owners = {t.order_id: tokens[t.index % len(tokens)] for t in traces if t.order_id}
        stored = run_loop(stored_sequences(http, owners))
        result = figures(traces, stored)
        accepted = max(1, result["accepted"])
        result["cpu_seconds_per_1000_orders"] = {
            name: round(u["cpu_seconds"] * 1000 / accepted, 2) for name, u in usage.items()}
        result["cpu_seconds_per_1000_orders"]["total"] = round(
            sum(u["cpu_seconds"] for u in usage.values()) * 1000 / accepted, 2)
        result["peak_memory_mib"] = {name: u["peak_memory_mib"] for name, u in usage.items()}
        result["postgres_per_order"] = accounted.postgres_per_order(accepted)
        if accounted.ledger:
            result["aws"] = cost_report(accounted.ledger, accepted, function_memory_mb(CHALICE_CONFIG))
        result["load_seconds"] = round(load_seconds, 2)
        result["machine"] = {"python_loop_ms": loop_ms, "cpu_stolen_fraction": sampler.stolen_fraction}
        result["cold_start_ms"] = cold_starts({**os.environ, **described.get("env", {}),
                                               "PYTHONPATH": str(PROJECT_DIR)})
        result["settings"] = {
            "orders": args.orders, "concurrency": args.concurrency, "users": len(tokens),
            "venue_latency_ms": args.venue_latency or ("running cloud's" if args.attach else "150-250 / 2000-3000"),
            "failure_rate": None if args.attach else args.failure_rate,
            "emulator": "running cloud's" if args.attach else args.emulator,
            "worker_concurrency": args.worker_concurrency, "cores": os.cpu_count(),
            "connections": "one per order" if args.connection_per_order else "one per user",
            "orders_mix": args.orders_mix, "routing": args.routing,
        }
        chart_path = write(result, traces, args.out)
        result["chart"] = str(chart_path)
        return result
    finally:
        if cloud is not None:
            cloud.stop(keep_logs=args.out / "logs")


def write(result: dict[str, Any], traces, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    latency = result["settings"]["venue_latency_ms"]
    name = f"bench-{stamp}-{result['settings']['emulator']}-{str(latency).replace(' ', '').replace('/', '_')}"
    chart_path = out / f"{name}.png"
    chart(traces, f"{result['orders']} orders, {result['settings']['concurrency']} in flight, venue latency "
                  f"{latency} ms, {result['settings']['emulator']}: {result['completed_per_s']} completed/s",
          chart_path)
    for path in (out / f"{name}.json", out / "latest.json"):
        path.write_text(json.dumps({**result, "chart": str(chart_path)}, indent=2))
    return chart_path


def summary(result: dict[str, Any]) -> str:
    def pair(figure: dict) -> str:
        return f"p50 {figure['p50']} ms, p99 {figure['p99']} ms"

    cpu = result["cpu_seconds_per_1000_orders"]
    lines = [
        f"orders {result['orders']} ({result['settings'].get('orders_mix', 'small')}, routing "
        f"{result['settings'].get('routing', 'smart')}), accepted {result['accepted']}, refused "
        f"{result['refused'] or 0}, final {result['final_statuses']}",
        f"HTTP accept          {pair(result['accept_latency_ms'])}; {result['submissions_per_s']} submissions/s",
        f"submission to final  {pair(result['submission_to_final_ms'])}",
        f"engine overhead      {pair(result['engine_overhead_ms'])} (venue time {pair(result['venue_ms'])})",
        f"completed            {result['completed_per_s']} orders/s over {result['seconds']} s",
        f"orders lost          {result['orders_lost']}",
        f"subscribers complete {result['subscribers_complete_fraction']:.2%}",
        "CPU s / 1000 orders  " + ", ".join(f"{k} {v}" for k, v in cpu.items()),
        *([f"PostgreSQL per order {result['postgres_per_order']['transactions']} transactions, "
           f"{result['postgres_per_order']['row_writes']} row writes"] if result.get("postgres_per_order") else []),
        *(cost_summary(result["aws"]) if result.get("aws") else []),
        f"machine              a fixed Python loop takes {result['machine']['python_loop_ms']} ms here; the host "
        f"took {result['machine']['cpu_stolen_fraction']:.1%} of the CPU time during the load",
        "peak memory MiB      " + ", ".join(f"{k} {v}" for k, v in result["peak_memory_mib"].items()),
        "cold start ms        " + "; ".join(
            f"{fn}: import {r.get('import_ms')} + first invocation {r.get('first_invocation_ms')} = {r.get('total_ms')}"
            if "total_ms" in r else f"{fn}: {r}" for fn, r in result["cold_start_ms"].items()),
        f"chart                {result['chart']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scenario == "routes":  # pure computation: no cloud to start
        from .routes import run_routes
        from .routes import summary as routes_summary

        result = run_routes()
        print(routes_summary(result), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-routes.json").write_text(json.dumps(result, indent=2))
        return 0
    result = run(args)
    if result.get("scenario") == "limit":
        from .limit import summary as limit_summary

        print(limit_summary(result), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-limit.json").write_text(json.dumps(result, indent=2))
        return 0 if result["trigger_latency_ms"]["orders"] else 1
    if result.get("scenario") == "sniper":
        from .sniper import summary as sniper_summary

        print(sniper_summary(result), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-sniper.json").write_text(json.dumps(result, indent=2))
        return 0 if result["confirmed"] == result["snipers"] == result["swaps"] and not result["before_open"] else 1
    print(summary(result), flush=True)
    ok = result["orders_lost"] == 0 and result["subscribers_complete_fraction"] == 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
