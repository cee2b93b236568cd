"""Prometheus' text exposition format for a metrics snapshot (prometheus_client renders it)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..services.metrics import Snapshot

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _SnapshotCollector:
    def __init__(self, snapshot: Snapshot):
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        orders = GaugeMetricFamily("order_engine_orders", "Orders by current status and venue",
                                   labels=["status", "venue"])
        for status, venue, count in s.orders:
            orders.add_metric([status, venue], count)
        yield orders

        latency = HistogramMetricFamily(
            "order_engine_order_status_seconds", "Seconds from an order's submission until it reached each status",
            labels=["status"])
        for status, (cumulative, total, count) in s.latencies.items():
            buckets = [(repr(bound), n) for bound, n in zip(s.bounds, cumulative, strict=True)]
            latency.add_metric([status], [*buckets, ("+Inf", count)], total)
        yield latency

        queue = GaugeMetricFamily("order_engine_queue_messages", "Messages in the engine's SQS queues, by state",
                                  labels=["queue", "state"])
        for name, states in s.queues.items():
            for state, count in states.items():
                queue.add_metric([name, state], count)
        yield queue

        dead = GaugeMetricFamily("order_engine_dead_lettered_messages",
                                 "Order messages in the dead-letter queue (make redrive moves them back)")
        dead.add_metric([], s.dead_lettered)
        yield dead

        yield GaugeMetricFamily("order_engine_websocket_connections", "Open WebSocket connections",
                                value=s.connections)
        yield CounterMetricFamily("order_engine_swap_retries", "Swap submissions retried after a transient failure",
                                  value=s.retries.get("retries", 0))
        yield CounterMetricFamily("order_engine_sweeps", "Orders the sweeper found stuck and queued again",
                                  value=s.retries.get("sweeps", 0))


def render(snapshot: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
