"""The figures of one run, from the client's traces, and its chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .load import FINAL_STATUSES, OrderTrace


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value at or above ``fraction`` of the values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def complete_and_ordered(frames: list[tuple[int, str]], stored: list[tuple[int, str]] | None) -> bool:
    """The subscriber saw every stored event exactly once, in order, ending with the final status."""
    return bool(stored) and frames == stored and stored[-1][1] in FINAL_STATUSES


def figures(traces: list[OrderTrace], stored: dict[str, list[tuple[int, str]]]) -> dict[str, Any]:
    accepted = [t for t in traces if t.order_id]
    finished = [t for t in accepted if t.final_at is not None]
    accept_s = [t.accepted - t.submitted_at for t in accepted]
    total_s = [t.finished - t.submitted_at for t in finished]
    overhead_s = [t.finished - t.submitted_at - t.venue_ms / 1000 for t in finished]
    venue_ms = [float(t.venue_ms) for t in finished]
    start = min((t.submitted_at for t in traces if t.submitted_at), default=0.0)
    last_accept = max((t.accepted for t in accepted), default=start)
    last_final = max((t.finished for t in finished), default=start)
    # Lost: accepted, yet its stored status is not final either (a subscriber that missed the final frame of an
    # order that did end counts as an incomplete subscriber, not as a lost order).
    lost = [t for t in accepted if not stored.get(t.id) or stored[t.id][-1][1] not in FINAL_STATUSES]
    incomplete = [t for t in accepted if not complete_and_ordered(t.frames, stored.get(t.id))]
    refused: dict[str, int] = {}
    for t in traces:
        if not t.order_id:
            key = str(t.http_status) if t.http_status else (t.error or "no answer").split(":")[0]
            refused[key] = refused.get(key, 0) + 1
    statuses: dict[str, int] = {}
    for t in finished:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    return {
        "orders": len(traces),
        "accepted": len(accepted),
        "refused": refused,
        "final_statuses": statuses,
        "accept_latency_ms": {"p50": _ms(percentile(accept_s, 0.5)), "p99": _ms(percentile(accept_s, 0.99))},
        "submissions_per_s": round(len(accepted) / (last_accept - start), 1) if last_accept > start else None,
        "submission_to_final_ms": {"p50": _ms(percentile(total_s, 0.5)), "p99": _ms(percentile(total_s, 0.99))},
        "engine_overhead_ms": {"p50": _ms(percentile(overhead_s, 0.5)), "p99": _ms(percentile(overhead_s, 0.99))},
        "venue_ms": {"p50": percentile(venue_ms, 0.5), "p99": percentile(venue_ms, 0.99)},
        "completed_per_s": round(len(finished) / (last_final - start), 1) if last_final > start else None,
        "seconds": round(last_final - start, 2),
        "orders_lost": len(lost),
        "subscribers_complete_fraction": round(1 - len(incomplete) / len(accepted), 4) if accepted else None,
        "incomplete_examples": [
            {"orderId": t.id, "seen": t.frames, "stored": stored.get(t.id), "error": t.error}
            for t in incomplete[:3]
        ],
    }


def chart(traces: list[OrderTrace], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    finished = [t for t in traces if t.final_at is not None]
    start = min((t.submitted_at for t in traces if t.submitted_at), default=0.0)
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(13, 4.8))
    totals = [(t.finished - t.submitted_at) * 1000 for t in finished]
    overheads = [(t.finished - t.submitted_at) * 1000 - t.venue_ms for t in finished]
    accepts = [(t.accepted - t.submitted_at) * 1000 for t in traces if t.order_id]
    bins = 50
    latency.hist(totals, bins=bins, alpha=0.6, label="submission to final")
    latency.hist(overheads, bins=bins, alpha=0.6, label="engine overhead (minus venue time)")
    latency.hist(accepts, bins=bins, alpha=0.6, label="HTTP accept")
    latency.set_xlabel("milliseconds")
    latency.set_ylabel("orders")
    latency.set_title("Latency distribution")
    latency.legend()
    ends = sorted(t.finished - start for t in finished)
    throughput.plot(ends, range(1, len(ends) + 1), label="completed (cumulative)")
    accepted_at = sorted(t.accepted - start for t in traces if t.order_id)
    throughput.plot(accepted_at, range(1, len(accepted_at) + 1), label="accepted (cumulative)", linestyle="--")
    throughput.set_xlabel("seconds since the first submission")
    throughput.set_ylabel("orders")
    throughput.set_title("Completions over time")
    throughput.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
