"""Issue 3's proof: hundreds of orders per case while one fault is injected, and every figure perfect.

Each case starts its own PostgreSQL, Valkey and moto, and a local cloud that uses them, so that a fault in one
case cannot leak into the next. The table is printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import Cloud, running_cloud
from tests.faults.conftest import REPORTS
from tests.faults.harness import CLOUD_SETTINGS, Report, TestServers, count_in_log, run_case
from tests.faults.limit_load import run_limit_load
from tests.faults.sniper_load import run_sniper_load

pytestmark = pytest.mark.slow

ORDERS = 200


@pytest.fixture
def servers() -> Iterator[TestServers]:
    started = TestServers().start()
    try:
        yield started
    finally:
        started.stop()


def cloud_on(servers: TestServers, **env: str):
    return running_cloud(**{**CLOUD_SETTINGS, **servers.cloud_env(), **env})


def check(report: Report) -> None:
    REPORTS.append(report)
    print(f"\n{Report.header()}\n{report.row()}  ({report.seconds:.0f} s)")
    assert report.perfect(), (f"not every figure is perfect:\n{Report.header()}\n{report.row()}\n"
                              f"refused {dict(report.given_up)}; incomplete streams {report.incomplete}")


def restart_under_load(servers: TestServers, name: str, after_s: float = 2.0):
    def fault() -> str:
        time.sleep(after_s)  # orders are streaming in by now
        started = time.monotonic()
        servers.restart(name)
        return f"{name} restarted once (down {time.monotonic() - started:.1f} s)"

    return fault


def test_every_message_delivered_two_or_three_times(servers):
    with cloud_on(servers) as cloud:
        sqs = servers.sqs()
        queue_url = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
        rng = random.Random(3)
        copies = []

        async def deliver_again(order_id: str) -> None:
            # One copy at once (two deliveries racing), one later (mid-flight or after the end).
            body = json.dumps({"orderId": order_id})
            await asyncio.to_thread(sqs.send_message, QueueUrl=queue_url, MessageBody=body)
            await asyncio.sleep(rng.uniform(0, 1.5))
            await asyncio.to_thread(sqs.send_message, QueueUrl=queue_url, MessageBody=body)
            copies.append(2)

        report = run_case(cloud.http, cloud.ws, "1. every message 3 times", orders=ORDERS, on_accepted=deliver_again)
        report.faults = f"{sum(copies)} extra deliveries"
    check(report)


@pytest.mark.parametrize("point, every", [("after_routing", 40), ("after_swap", 40), ("after_commit", 10)])
def test_the_worker_killed_at_each_step(servers, point, every):
    with cloud_on(servers, FAULT_CRASH_AT=point, FAULT_CRASH_EVERY=str(every)) as cloud:
        report = run_case(cloud.http, cloud.ws, f"2. worker killed {point}", orders=ORDERS)
        kills = sum(count_in_log(log, "fault injection: killing this process") for log in worker_logs(cloud))
        report.faults = f"worker killed {kills} times"
    assert kills >= 2, "the crash point was not reached often enough to prove anything"
    check(report)


def worker_logs(cloud: Cloud):
    return sorted((cloud.data_dir / "logs").glob("worker*.log"))  # worker.log, worker-2.log, ...


@pytest.mark.parametrize("name, case", [
    ("postgres", "3. PostgreSQL restarted"),
    ("valkey", "4. Valkey restarted"),
    ("emulator", "5. AWS emulator restarted"),
])
def test_a_server_restarted_under_load(servers, name, case):
    with cloud_on(servers) as cloud:
        report = run_case(cloud.http, cloud.ws, case, fault=restart_under_load(servers, name), orders=ORDERS)
    check(report)


def test_websocket_clients_dropping_and_resubscribing_mid_stream(servers):
    with cloud_on(servers) as cloud:
        report = run_case(cloud.http, cloud.ws, "6. subscribers drop and return", orders=ORDERS,
                          drop_every=(0.2, 1.0))
        report.faults = f"{report.reconnections} reconnections mid-stream"
    assert report.reconnections >= 20
    check(report)


def kill_every_process_of(cloud: Cloud, name: str) -> int:
    """SIGKILL to the server and every process it started (PostgreSQL's backends, its WAL writer ...) at once: no
    shutdown of any kind, as when the machine's OOM killer or an operator's kill -9 strikes."""
    import psutil

    pid = json.loads((cloud.data_dir / "cloud.json").read_text())["processes"][name]
    try:
        parent = psutil.Process(pid)
        victims = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0  # being started again from an earlier kill
    for process in victims:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return len(victims)


def test_every_postgres_process_killed_outright_under_load():
    """The cloud owns its PostgreSQL here, so its supervisor must start it again. Killed once mid-load and once
    just after the last order was answered 202: every acknowledged order must exist and reach a final status."""
    with running_cloud(**CLOUD_SETTINGS) as cloud:
        kills: list[int] = []
        accepted = 0

        async def after_the_last_answer(order_id: str) -> None:
            nonlocal accepted
            accepted += 1
            if accepted == ORDERS:
                kills.append(kill_every_process_of(cloud, "postgres"))

        def fault() -> str:
            time.sleep(2.0)  # orders are streaming in by now
            kills.append(kill_every_process_of(cloud, "postgres"))
            return ""

        report = run_case(cloud.http, cloud.ws, "7. every PostgreSQL process SIGKILLed", fault=fault, orders=ORDERS,
                          on_accepted=after_the_last_answer)
        restarts = "".join(cloud.output).count("warning: postgres exited with code -9")
        report.faults = f"{len(kills)} kills of {'+'.join(map(str, kills))} processes; {restarts} restarts"
    assert len(kills) == 2 and all(kills) and restarts >= 2, report.faults
    check(report)


# Limit orders: resting near the market while other traders push the price both ways ------------------------------

LIMIT_ORDERS = 120


def test_limit_orders_with_every_pool_event_delivered_three_times(servers):
    with cloud_on(servers) as cloud:
        sqs = servers.sqs()
        queue_url = sqs.get_queue_url(QueueName="pool-events")["QueueUrl"]
        copies = []

        async def deliver_again(swap: dict) -> None:
            base, quote = ("SOL", "USDC")
            body = json.dumps({"pools": [{"poolId": swap["poolId"], "base": base, "quote": quote}]})
            for _ in range(2):  # the event the swap published, twice more
                await asyncio.to_thread(sqs.send_message, QueueUrl=queue_url, MessageBody=body)
                copies.append(1)

        report = run_case(cloud.http, cloud.ws, "8. limit: pool events 3 times", orders=LIMIT_ORDERS,
                          load_with=run_limit_load, on_swap=deliver_again)
        report.faults = f"{len(copies)} extra pool events"
    check(report)


def test_limit_orders_with_the_worker_killed_after_triggering(servers):
    with cloud_on(servers, FAULT_CRASH_AT="after_triggered", FAULT_CRASH_EVERY="4") as cloud:
        report = run_case(cloud.http, cloud.ws, "9. limit: killed after triggered", orders=LIMIT_ORDERS,
                          load_with=run_limit_load)
        kills = sum(count_in_log(log, "fault injection: killing this process") for log in worker_logs(cloud))
        report.faults = f"worker killed {kills} times"
    check(report)
    assert kills > 0


def test_limit_orders_with_cancels_and_expiries_racing_their_triggers(servers):
    with cloud_on(servers) as cloud:
        report = run_case(cloud.http, cloud.ws, "10. limit: cancels, expiries race", orders=LIMIT_ORDERS,
                          load_with=run_limit_load, cancel_share=0.6, gtd_share=0.5)
        report.faults = "60 % cancelled at random, 50 % GTD of 2-8 s"
    check(report)


# Sniper orders: launches opening a few seconds ahead, snipers waiting on each -------------------------------------

SNIPER_ORDERS = 100


def test_snipers_with_every_launch_event_delivered_three_times(servers):
    with cloud_on(servers) as cloud:
        sqs = servers.sqs()
        queue_url = sqs.get_queue_url(QueueName="pool-events")["QueueUrl"]
        copies = []

        async def deliver_again(pool: dict) -> None:
            """The launch's event twice more now, and the pair's wake-up twice more at the open."""
            body = json.dumps({"pools": [{"poolId": pool["poolId"], "base": pool["pool"]["base"],
                                          "quote": pool["pool"]["quote"]}]})
            opens_in = (datetime.fromisoformat(pool["openTime"]) - datetime.now(UTC)).total_seconds()
            for delay in (0, 0, max(0, int(opens_in)), max(0, int(opens_in))):
                await asyncio.to_thread(sqs.send_message, QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay)
                copies.append(1)

        report = run_case(cloud.http, cloud.ws, "11. sniper: launch events 3 times", orders=SNIPER_ORDERS,
                          load_with=run_sniper_load, on_launch=deliver_again)
        report.faults = f"{len(copies)} extra launch events"
    check(report)


def test_snipers_with_the_trigger_killed_after_triggering(servers):
    with cloud_on(servers, FAULT_CRASH_AT="after_triggered", FAULT_CRASH_EVERY="7") as cloud:
        report = run_case(cloud.http, cloud.ws, "12. sniper: killed after triggered", orders=SNIPER_ORDERS,
                          load_with=run_sniper_load)
        kills = sum(count_in_log(log, "fault injection: killing this process") for log in worker_logs(cloud))
        report.faults = f"worker killed {kills} times"
    check(report)
    assert kills > 0


def test_snipers_with_cancels_racing_the_open(servers):
    with cloud_on(servers) as cloud:
        report = run_case(cloud.http, cloud.ws, "13. sniper: cancels race the open", orders=SNIPER_ORDERS,
                          load_with=run_sniper_load, cancel_share=0.4)
        report.faults = "40 % cancelled within 0.5 s of the open"
    check(report)
