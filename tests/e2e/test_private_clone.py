"""A newcomer's clone: as root, in a folder only root may enter (a root home is 0700), under a path with spaces.

PostgreSQL runs as ``nobody`` when the local cloud runs as root, and ``nobody`` cannot reach anything inside such a
folder: the cloud must still start, serve and run the tests, without making anything of the user's readable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from chalicelib.auth import issue_token
from chalicelib.settings import LOCAL_JWT_SECRET
from infra.local.lambda_runtime import PROJECT_DIR
from infra.local.processes import free_port

pytestmark = pytest.mark.slow


def project_files() -> list[str]:
    """What a clone holds: the tracked files and the new ones not ignored, as they are in this working tree."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=PROJECT_DIR,
                            capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (PROJECT_DIR / name).is_file()]


@pytest.fixture(scope="module")
def private_clone():
    private = Path(tempfile.mkdtemp(prefix="private-"))  # 0700, owned by whoever runs the tests
    clone = private / "home dir" / "order engine"
    for name in project_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, clone / name)
    outside = Path(tempfile.gettempdir())
    before = set(outside.glob("order-engine-postgres-*"))
    try:
        yield private, clone
    finally:
        if (clone / ".venv").exists():  # make clean forgets the data, even where PostgreSQL had to keep it
            subprocess.run(["make", "clean"], cwd=clone, capture_output=True, timeout=60)
            left = [p for p in set(outside.glob("order-engine-postgres-*")) - before if "-bin-" not in p.name]
            assert not left, f"make clean left PostgreSQL's data in {left}"
        for copy in set(outside.glob("order-engine-postgres-bin-*")) - before:
            shutil.rmtree(copy, ignore_errors=True)  # the clone's copy of the binaries goes with the clone
        shutil.rmtree(private, ignore_errors=True)


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_make_run_serves_orders_from_a_private_clone_under_a_path_with_spaces(private_clone):
    private, clone = private_clone
    ports = {name: str(free_port()) for name in ("HTTP_PORT", "WS_PORT", "AWS_EMULATOR_PORT", "PG_PORT", "REDIS_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_URL", "REDIS_URL", "VIRTUAL"))}
    env.update(ports, DEX_SWAP_LATENCY_MS="20-50", LOCAL_QUIET="1")
    # The clone installs its own environment, as `make run` on a fresh machine does (uv's cache makes it quick).
    make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            line = make.stdout.readline()
            if not line and make.poll() is not None:
                break
            output.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        assert output and output[-1].startswith("Ctrl-C"), "make run did not start:\n" + "".join(output[-40:])
        token = issue_token("newcomer", LOCAL_JWT_SECRET)
        http = f"http://127.0.0.1:{ports['HTTP_PORT']}"
        status, placed = post_json(f"{http}/orders", {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.5"}, token)
        assert status == 202
        deadline = time.monotonic() + 30
        while (order := get_json(f"{http}/orders/{placed['orderId']}", token))["status"] not in ("confirmed", "failed"):
            assert time.monotonic() < deadline, order
            time.sleep(0.2)
        assert order["status"] == "confirmed"
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(30)
    # Nothing of the user's was opened to others.
    assert stat.S_IMODE(private.stat().st_mode) == 0o700


def test_the_integration_tests_run_from_the_private_clone(private_clone):
    """Where `make test` had 89 errors: every test that starts PostgreSQL. Two such files stand for them."""
    _, clone = private_clone
    python = clone / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip("the clone's environment comes from the make run test above")
    # make run installed what the local cloud needs, and neither the CDK library nor the test tools.
    for absent in ("aws_cdk", "pytest"):
        probe = subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True, timeout=60)
        assert probe.returncode != 0, f"make run installed {absent}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL"))}
    installed = subprocess.run(["make", "install-dev"], cwd=clone, env=env, capture_output=True, text=True,
                               timeout=600)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-2000:]
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/integration/test_health.py", "tests/integration/test_postgres_and_dex.py"],
                            cwd=clone, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, installed.stdout[-2000:] + result.stdout[-3000:] + result.stderr[-2000:]
