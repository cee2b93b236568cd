"""EventBridge schedules for the app's ``@app.schedule`` functions: each runs on its rate, in its own thread."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice.app import ScheduleExpression

log = logging.getLogger("scheduler")

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str | ScheduleExpression) -> float:
    """Seconds between runs of a ``rate(N unit)`` expression; cron expressions are not emulated."""
    if isinstance(expression, ScheduleExpression):
        expression = expression.to_string()
    match = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression.strip())
    if not match:
        raise ValueError(f"the local scheduler runs rate() expressions only, not {expression!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def scheduled_event(rule: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{rule}"],
        "detail": {},
    }


class Schedule:
    def __init__(self, name: str, every_s: float, invoke: Callable[[dict[str, Any]], Any], region: str = "us-east-1"):
        self.name = name
        self.every_s = every_s
        self._invoke = invoke
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> Schedule:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            started = time.monotonic()
            try:
                result = self._invoke(scheduled_event(self.name, self._region))
                log.info("%s ran in %.0f ms: %s", self.name, (time.monotonic() - started) * 1000, result)
            except Exception:
                log.exception("%s failed", self.name)
