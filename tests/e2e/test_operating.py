"""What an operator of the local cloud sees and relies on: a line per request and invocation on the terminal, code
edits taking effect without a restart, and servers that die started again with nothing acknowledged lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET
from infra.local.lambda_runtime import PROJECT_DIR
from tests.e2e.conftest import Cloud, new_cloud, running_cloud
from tests.e2e.test_private_clone import project_files

pytestmark = pytest.mark.slow

TOKEN = issue_token("operator", LOCAL_JWT_SECRET)


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def until_final(cloud: Cloud, order_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, order = call("GET", f"{cloud.http}/orders/{order_id}")
        if status == 200 and order["status"] in ("confirmed", "failed"):
            return order
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} did not finish: {status} {order}")


def test_the_terminal_shows_each_request_and_each_invocation():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10") as cloud:
        status, placed = call("POST", f"{cloud.http}/orders", {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"})
        assert status == 202
        until_final(cloud, placed["orderId"])
        assert " POST /orders 202 " in cloud.wait_for_output("POST /orders")
        line = cloud.wait_for_output("λ execute_orders")
        assert " ms, 1 record, 0 failed" in line or " records, 0 failed" in line, line
        cloud.wait_for_output(f"GET /orders/{placed['orderId']} 200 ")


def test_local_quiet_turns_the_lines_off():
    with running_cloud(LOCAL_QUIET="1", DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10") as cloud:
        call("GET", f"{cloud.http}/pools")
        time.sleep(1)
        assert not any("GET /pools" in line for line in cloud.output), cloud.output


@pytest.fixture
def project_copy(tmp_path_factory):
    """A copy of the project whose code the test may edit."""
    root = Path(tmp_path_factory.mktemp("editable")) / "project"
    for name in project_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, root / name)
    return root


def touch_later(path: Path) -> None:
    """Some file systems keep a second's resolution: the edit must look newer whatever the clock did."""
    later = path.stat().st_mtime_ns + 2 * 10**9
    os.utime(path, ns=(later, later))


def test_editing_the_code_takes_effect_at_the_next_invocation_without_a_restart(project_copy):
    cloud = new_cloud()
    cloud.project_dir = project_copy
    try:
        cloud.start()
        gateway_pid = json.loads((cloud.data_dir / "cloud.json").read_text())["processes"]["gateway"]
        assert call("GET", f"{cloud.http}/hello")[0] == 404  # no such route yet

        app = project_copy / "app.py"
        app.write_text(app.read_text() + '\n\n@app.route("/hello")\ndef hello() -> dict:\n'
                       '    from chalicelib import clock\n\n'
                       '    return {"hello": getattr(clock, "GREETING", "first")}\n')
        touch_later(app)
        deadline = time.monotonic() + 5
        while (answer := call("GET", f"{cloud.http}/hello"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer == (200, {"hello": "first"})

        module = project_copy / "chalicelib" / "clock.py"
        module.write_text(module.read_text() + '\nGREETING = "second"\n')
        touch_later(module)
        deadline = time.monotonic() + 5
        while (answer := call("GET", f"{cloud.http}/hello"))[1] != {"hello": "second"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer == (200, {"hello": "second"})
        # The same servers and gateway served it all; orders still run end to end on the new code.
        assert json.loads((cloud.data_dir / "cloud.json").read_text())["processes"]["gateway"] == gateway_pid
        status, placed = call("POST", f"{cloud.http}/orders", {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"})
        assert status == 202 and until_final(cloud, placed["orderId"])["status"] in ("confirmed", "failed")
        cloud.wait_for_output("GET /hello 200 ")
    finally:
        if cloud.process and cloud.process.poll() is None:
            cloud.stop()
        shutil.rmtree(cloud.data_dir.parent, ignore_errors=True)


def server_processes(cloud: Cloud, name: str) -> list[psutil.Process]:
    pid = json.loads((cloud.data_dir / "cloud.json").read_text())["processes"][name]
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


@pytest.mark.parametrize("name", ["valkey", "moto"])
def test_a_server_killed_outright_is_started_again_and_the_cloud_keeps_serving(name):
    with running_cloud(DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10", STUCK_AFTER_SECONDS="3",
                       LOCAL_SCHEDULE_SECONDS="1") as cloud:
        status, before = call("POST", f"{cloud.http}/orders", {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"})
        assert status == 202
        for process in server_processes(cloud, name):
            process.send_signal(signal.SIGKILL)
        cloud.wait_for_output(f"warning: {name} exited with code -9; starting it again")
        deadline = time.monotonic() + 30
        while (status := call("POST", f"{cloud.http}/orders", {"tokenIn": "SOL", "tokenOut": "USDC",
                                                                "amountIn": "1"}))[0] != 202:
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert until_final(cloud, before["orderId"])["status"] == "confirmed"
        assert until_final(cloud, status[1]["orderId"])["status"] == "confirmed"
        assert cloud.process.poll() is None


def json_lines(cloud: Cloud, pattern: str) -> list[dict]:
    found = []
    for path in (cloud.data_dir / "logs").glob(pattern):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
    return found


def test_the_functions_log_json_lines_with_the_request_id_the_order_and_the_idempotency_key():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_SWAP_LATENCY_MS="10") as cloud:
        request = urllib.request.Request(
            f"{cloud.http}/orders", method="POST",
            data=json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                     "Idempotency-Key": "logged-key-1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            order_id = json.load(response)["orderId"]
            location = response.headers["Location"]
        assert location == f"/orders/{order_id}"  # the local cloud has no stage prefix in its paths
        until_final(cloud, order_id)
        time.sleep(0.5)
        accepted = [r for r in json_lines(cloud, "gateway*.log") if r.get("message") == "order accepted"]
        assert len(accepted) == 1, json_lines(cloud, "gateway*.log")[-5:]
        assert accepted[0]["orderId"] == order_id and accepted[0]["idempotencyKey"] == "logged-key-1"
        assert accepted[0]["function_request_id"] and accepted[0]["level"] == "INFO"
        confirmed = [r for r in json_lines(cloud, "worker*.log") if r.get("orderId") == order_id]
        assert confirmed and confirmed[-1]["message"] == f"order {order_id} confirmed"
        assert confirmed[-1]["function_request_id"] and confirmed[-1]["function_name"].endswith("execute_orders")


def test_what_the_local_cloud_cannot_use_is_named_in_one_line_with_what_to_do(tmp_path):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    env = {**new_cloud().env(), "LOCAL_DATA_DIR": str(not_a_folder)}
    result = subprocess.run([sys.executable, "-m", "infra.local", "run"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0 and len(output) == 1, output
    assert output[0].startswith("error: ") and str(not_a_folder) in output[0] and "LOCAL_DATA_DIR" in output[0]
