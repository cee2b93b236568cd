"""The ``make run`` terminal: one line per REST request and per function invocation, as ``sam local``,
``chalice local`` and serverless-offline print them (``LOCAL_QUIET=1`` turns them off).

The function processes write their lines to a pipe the supervisor gave them (``LOCAL_CONSOLE_FD``); the supervisor
relays them to its own output. A terminal nobody reads (a test that stopped reading, a paused ``less``) must never
slow the engine: the relay always drains the pipe and drops lines it cannot print, so a writer never waits.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import TextIO

CONSOLE_FD = "LOCAL_CONSOLE_FD"
BACKLOG_LINES = 10_000


class Console:
    """Writes lines to the supervisor's pipe; nothing when there is none (quiet, or run outside the local cloud)."""

    def __init__(self, fd: int | None):
        self._fd = fd

    @classmethod
    def from_env(cls) -> Console:
        fd = os.environ.get(CONSOLE_FD)
        return cls(int(fd) if fd else None)

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def line(self, text: str) -> None:
        if self._fd is None:
            return
        stamp = time.strftime("%H:%M:%S")
        try:  # one write of less than PIPE_BUF bytes: lines of several processes never interleave
            os.write(self._fd, f"{stamp} {text}\n".encode()[:4000])
        except OSError:
            self._fd = None  # the supervisor is gone


def invocation_line(function: str, cold: bool, ms: float, event: object, result: object) -> str:
    """``execute_orders warm 41.2 ms, 10 records, 1 failed`` (the records and failures of an SQS batch)."""
    text = f"λ {function} {'cold' if cold else 'warm'} {ms:.1f} ms"
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list):
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        text += f", {len(records)} record{'s' if len(records) != 1 else ''}, {len(failures or [])} failed"
    return text


class ConsoleRelay:
    """The supervisor's end: a pipe for the children and two threads, one draining it into a bounded backlog
    (dropping what does not fit), one printing the backlog."""

    def __init__(self, out: TextIO = sys.stdout, backlog: int = BACKLOG_LINES):
        self._out = out
        self.read_fd, self.write_fd = os.pipe()
        self._lines: queue.Queue[bytes] = queue.Queue(backlog)
        self.dropped = 0
        for target in (self._drain, self._print):
            threading.Thread(target=target, name=f"console-{target.__name__}", daemon=True).start()

    def _drain(self) -> None:
        with os.fdopen(self.read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    try:
                        self._lines.put_nowait(line)
                    except queue.Full:
                        self.dropped += 1

    def _print(self) -> None:
        while True:
            line = self._lines.get()
            try:
                self._out.write(line.decode(errors="replace") + "\n")
                self._out.flush()
            except (OSError, ValueError):
                return
