"""What the local cloud does that AWS bills, counted for ``make bench``'s cost report: every function invocation with
its duration, every SQS request by action, and every API Gateway request (a REST request, a WebSocket message
received, an ``@connections`` post).

Off unless ``LOCAL_LEDGER`` names a file. Each process of the local cloud appends one short line per event, in one
``write`` of less than ``PIPE_BUF`` bytes to a file opened for appending, so the lines of several processes never
interleave; the bench reads the lines written while its load ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LEDGER = "LOCAL_LEDGER"

LAMBDA, SQS, API_GATEWAY = "lambda", "sqs", "apigateway"
REST_REQUEST, WEBSOCKET_MESSAGE, CONNECTIONS_POST = "rest request", "websocket message", "@connections post"


class Ledger:
    def __init__(self, path: str | None):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None

    @classmethod
    def from_env(cls) -> Ledger:
        return cls(os.environ.get(LEDGER) or None)

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def record(self, service: str, name: str, ms: float = 0.0) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, f"{service}\t{name}\t{ms:.3f}\n".encode()[:512])
        except OSError:
            self._fd = None  # the file went away: counting stops, the cloud goes on


@dataclass(frozen=True)
class Tally:
    count: int
    total_ms: float


def tally(lines: Iterable[str]) -> dict[tuple[str, str], Tally]:
    """Each (service, name): how many events and their total duration."""
    counts: dict[tuple[str, str], list[float]] = {}
    for line in lines:
        service, name, ms = (line.rstrip("\n").split("\t") + ["", "", "0"])[:3]
        if not name:
            continue
        entry = counts.setdefault((service, name), [0, 0.0])
        entry[0] += 1
        entry[1] += float(ms or 0)
    return {key: Tally(int(count), total) for key, (count, total) in counts.items()}


def read_from(path: Path, offset: int, end: int | None = None) -> list[str]:
    """The complete lines written from byte ``offset`` (to ``end``)."""
    with open(path, "rb") as ledger:
        ledger.seek(offset)
        data = ledger.read() if end is None else ledger.read(max(0, end - offset))
    return [line for line in data.decode(errors="replace").splitlines() if line]
