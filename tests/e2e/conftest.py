from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.local.lambda_runtime import PROJECT_DIR
from infra.local.processes import free_port
from tests.conftest import scratch_dir


@dataclass
class Cloud:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)
    project_dir: Path = PROJECT_DIR
    _reader: threading.Thread | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['HTTP_PORT']}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ports['WS_PORT']}/api"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['REDIS_PORT']}/0"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_URL", "REDIS_URL"))}
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update({"LOCAL_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1", **self.extra_env})
        env.pop("JWT_SECRET", None)  # the local stage's default secret, as a developer would have it
        return env

    def start(self, timeout: float = 90) -> Cloud:
        self.output = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "run"], cwd=self.project_dir, env=self.env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError("the local cloud exited:\n" + "".join(self.output))
            self.output.append(line)
            if line.startswith("Ctrl-C stops everything"):
                # Read on, as a terminal does: a pipe nobody reads would block the supervisor's next line.
                self._reader = threading.Thread(target=self._read_on, args=(self.process,), daemon=True)
                self._reader.start()
                return self
        raise RuntimeError("the local cloud did not start in time:\n" + "".join(self.output))

    def _read_on(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.output.append(line)

    def wait_for_output(self, text: str, timeout: float = 10) -> str:
        """The first line of the cloud's output since it started that contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.output) if text in line), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} in the cloud's output:\n" + "".join(self.output[-30:]))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> float:
        """Stops the cloud; returns how long it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        else:
            self.output.extend(self.process.stdout.readlines())
        return time.monotonic() - started


def new_cloud(**extra_env: str) -> Cloud:
    ports = {name: free_port() for name in ("HTTP_PORT", "WS_PORT", "AWS_EMULATOR_PORT", "PG_PORT", "REDIS_PORT")}
    # A data folder that does not exist yet, as on a fresh clone.
    return Cloud(scratch_dir("cloud-") / "fresh", ports, {
        "DEX_QUOTE_LATENCY_MS": "5-20", "DEX_SWAP_LATENCY_MS": "100-300", "DEX_FAILURE_RATE": "0.1",
        "WORKER_CONCURRENCY": "10", "RETRY_BASE_SECONDS": "1", **extra_env,
    })


@contextmanager
def running_cloud(**extra_env: str) -> Iterator[Cloud]:
    """A local cloud of its own, stopped and removed afterwards whatever the test did to it."""
    cloud = new_cloud(**extra_env)
    try:
        yield cloud.start()
    finally:
        if cloud.process and cloud.process.poll() is None:
            cloud.stop()
        shutil.rmtree(cloud.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def cloud():
    with running_cloud() as running:
        yield running


SUMMARIES: list[str] = []  # figures a test wants shown at the end of the run, whatever pytest captured


def pytest_terminal_summary(terminalreporter) -> None:
    if SUMMARIES:
        terminalreporter.section("end-to-end figures")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
