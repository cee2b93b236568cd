"""The order-engine command (issue 20) against the running local cloud, run for real in a subprocess: a watched
order's every status in order and exit 0, an order that does not fill exits 1, bad input exits 2 with the API's own
message, and tail sees an order placed over REST by another process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import running_cloud

pytestmark = pytest.mark.slow

COMMAND = Path(sys.executable).parent / "order-engine"  # installed into the environment by make run / make test


@pytest.fixture(scope="module")
def cloud():
    with running_cloud(DEX_FAILURE_RATE="0", DEX_QUOTE_LATENCY_MS="1-5", DEX_SWAP_LATENCY_MS="20-50") as running:
        yield running


def order_engine(cloud, *args: str, token: str | None = None, timeout: float = 60,
                 ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDER_ENGINE_URL": cloud.http, "ORDER_ENGINE_WS_URL": cloud.ws,
           **({"ORDER_ENGINE_TOKEN": token} if token else {})}
    if token is None:
        env.pop("ORDER_ENGINE_TOKEN", None)
    return subprocess.run([str(COMMAND), *args], capture_output=True, text=True, env=env, timeout=timeout)


def user_token(cloud, user: str) -> str:
    minted = order_engine(cloud, "token", user)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def test_a_watched_order_shows_every_status_in_order_and_exits_0(cloud):
    token = user_token(cloud, f"cli-{uuid.uuid4().hex[:6]}")
    placed = order_engine(cloud, "--json", "place", "market", "SOL", "USDC", "1.5", "--slippage-bps", "100",
                          "--client-order-id", "cli-1", "--watch", token=token)
    assert placed.returncode == 0, placed.stderr
    accepted, *updates = [json.loads(line) for line in placed.stdout.splitlines()]
    assert accepted["status"] == "pending"
    assert [(u["seq"], u["status"]) for u in updates] == [
        (1, "pending"), (2, "routing"), (3, "building"), (4, "submitted"), (5, "confirmed")]
    assert {u["orderId"] for u in updates} == {accepted["orderId"]}
    human = order_engine(cloud, "place", "market", "SOL", "USDC", "0.5", "--watch", token=token)
    assert human.returncode == 0, human.stderr
    lines = [line for line in human.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3}  ", line)]
    assert [line.split("seq ")[1].split()[1] for line in lines] == [
        "pending", "routing", "building", "submitted", "confirmed"]
    assert "venue" in lines[-1] and "amountOut" in lines[-1]
    listed = order_engine(cloud, "--json", "orders", "--status", "confirmed", token=token)
    assert len(json.loads(listed.stdout)["orders"]) == 2


def test_an_order_that_does_not_fill_exits_1(cloud):
    token = user_token(cloud, f"cli-{uuid.uuid4().hex[:6]}")
    never = order_engine(cloud, "place", "limit", "SOL", "USDC", "1", "--limit-price", "900", "--tif", "IOC",
                         "--watch", token=token)
    assert never.returncode == 1, never.stdout + never.stderr
    assert "expired" in never.stdout


def test_bad_input_exits_2_with_the_apis_own_message_and_no_traceback(cloud):
    token = user_token(cloud, f"cli-{uuid.uuid4().hex[:6]}")
    bad = order_engine(cloud, "place", "market", "SOL", "USDC", "-3", token=token)
    assert bad.returncode == 2 and "error 422" in bad.stderr and "amountIn" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
    unknown = order_engine(cloud, "cancel", str(uuid.uuid4()), token=token)
    assert unknown.returncode == 2 and "error 404" in unknown.stderr
    usage = order_engine(cloud, "place", "market", "SOL", token=token)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    no_token = order_engine(cloud, "orders")
    assert no_token.returncode == 2 and "no token" in no_token.stderr and "Traceback" not in no_token.stderr


def test_tail_sees_an_order_placed_over_rest_by_another_process(cloud):
    token = user_token(cloud, f"cli-{uuid.uuid4().hex[:6]}")
    env = {**os.environ, "ORDER_ENGINE_URL": cloud.http, "ORDER_ENGINE_WS_URL": cloud.ws,
           "ORDER_ENGINE_TOKEN": token}
    tail = subprocess.Popen([str(COMMAND), "--json", "tail", "--count", "6", "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.5)  # subscribed by now
        answer = requests.post(f"{cloud.http}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                               json={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.2"})
        assert answer.status_code == 202
        out, err = tail.communicate(timeout=40)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    frames = [json.loads(line) for line in out.splitlines()]
    assert frames[0] == {**frames[0], "type": "order.created", "orderId": answer.json()["orderId"]}
    assert [f["status"] for f in frames[1:]] == ["pending", "routing", "building", "submitted", "confirmed"]
