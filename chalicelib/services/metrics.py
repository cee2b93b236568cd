"""What the engine is doing, read from where it is recorded: orders in PostgreSQL, messages in SQS, connections
in Redis. Read at scrape time, so every function instance reports the same figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .ports import OpenConnections, OrderStatistics, QueueDepth

# Seconds from an order's submission to each status: from a fast venue's fill to the slowest retry.
LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class Snapshot:
    orders: list[tuple[str, str, int]]  # (status, venue, count)
    latencies: dict[str, tuple[list[int], float, int]]  # status -> (cumulative bucket counts, sum, count)
    queues: dict[str, dict[str, int]]  # queue -> state -> messages
    dead_lettered: int
    connections: int
    retries: dict[str, int]
    bounds: tuple[float, ...] = LATENCY_BOUNDS


class MetricsReader:
    def __init__(self, orders: OrderStatistics, queues: Mapping[str, QueueDepth], dead_letter_queue: str,
                 connections: OpenConnections):
        self._orders = orders
        self._queues = queues
        self._dead_letter_queue = dead_letter_queue
        self._connections = connections

    def snapshot(self) -> Snapshot:
        queues = {name: queue.depth() for name, queue in self._queues.items()}
        figures = self._orders.figures(LATENCY_BOUNDS)
        return Snapshot(
            orders=sorted((status, venue, n) for (status, venue), n in figures.counts.items() if n),
            latencies=figures.latencies,
            queues=queues,
            dead_lettered=sum(queues[self._dead_letter_queue].values()),
            connections=self._connections.open_connections(),
            retries={"retries": figures.retries, "sweeps": figures.sweeps},
        )
