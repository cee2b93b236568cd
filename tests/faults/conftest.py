"""Prints the fault-injection table at the end of the run, and writes it to .local/fault-injection.json."""

from __future__ import annotations

import json

from infra.local.lambda_runtime import PROJECT_DIR
from tests.faults.harness import Report

REPORTS: list[Report] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("fault injection: every figure must be perfect")
    terminalreporter.write_line(Report.header())
    for report in REPORTS:
        terminalreporter.write_line(report.row())
    path = PROJECT_DIR / ".local" / "fault-injection.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # vars(), not dataclasses.asdict(): asdict rebuilds a Counter from (key, count) pairs and counts the pairs.
    path.write_text(json.dumps([{**vars(r), "refused": dict(r.refused), "given_up": dict(r.given_up),
                                 "incomplete": r.incomplete,
                                 "perfect": r.perfect(), "subscriber_fraction": r.subscriber_fraction}
                                for r in REPORTS], indent=2))
    terminalreporter.write_line(f"written to {path}")
