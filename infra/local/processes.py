"""Child processes that die with their parent and stop within a deadline, and the event loop the local cloud's
asyncio servers run on."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` on uvloop where it is installed (not on Windows): libuv's event loop takes the gateway about a
    tenth less CPU per request and pushed frame than asyncio's own, measured with ``make bench``."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


class PortTaken(Exception):
    pass


class Server(Protocol):
    """A stateful server of the local cloud (PostgreSQL, Valkey, the AWS emulator): launched, then waited for."""

    child: Child | None

    @property
    def url(self) -> str: ...

    def launch(self) -> None: ...

    def wait_ready(self) -> None: ...


def _die_with_parent() -> None:
    # Linux only: if the supervisor is killed outright, its children are not left running.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def ensure_port_free(port: int, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise PortTaken(
                f"port {port} on 127.0.0.1 is already in use, so {name} cannot start; "
                f"stop what holds it or choose another port (see the settings in README.md)"
            ) from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], bool], timeout: float, what: str, process: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what} exited during start-up; its log is {process.log_path}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")


class Child:
    """One supervised process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        user: tuple[int, int] | None = None,
        pass_fds: tuple[int, ...] = (),
    ):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.user = user
        self.pass_fds = pass_fds
        self.popen: subprocess.Popen | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        user = self.user

        def prepare() -> None:
            os.setpgrp()  # Ctrl-C reaches the supervisor only, which then stops each child in order
            if user is not None:
                os.setgid(user[1])
                os.setuid(user[0])
            _die_with_parent()  # after setuid, which clears it

        self.popen = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            cwd=self.cwd, preexec_fn=prepare, pass_fds=self.pass_fds,
        )
        log.close()
        return self

    @property
    def process(self) -> subprocess.Popen:
        """The running (or exited) process; only after ``start()``."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_stop(self) -> None:
        if self.alive():
            self.process.send_signal(self.stop_signal)

    def wait_stopped(self, deadline: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout: float = 4.0) -> None:
        self.signal_stop()
        self.wait_stopped(time.monotonic() + timeout)
