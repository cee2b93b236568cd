"""CPU time and peak memory of each process of the local cloud while the load runs.

A process counts with its descendants that are not tracked in their own right (PostgreSQL's backends, LocalStack's
helpers). CPU is user plus system time of the processes the samples saw (PostgreSQL keeps its backends for the
pools' lifetime). Memory is the root's resident size plus its descendants' private pages, so the buffers
PostgreSQL's backends share are counted once.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import psutil


def _cpu(times) -> float:
    return times.user + times.system


def _memory(process: psutil.Process, is_root: bool) -> int:
    # A descendant counts its private pages only (resident minus shared): PostgreSQL's backends share its buffers.
    # Read from /proc/<pid>/statm: cheap enough to sample often, unlike PSS.
    memory = process.memory_info()
    return memory.rss if is_root else memory.rss - getattr(memory, "shared", 0)


@dataclass
class _Tracked:
    root: psutil.Process
    first_cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds when first seen
    last_cpu: dict[int, float] = field(default_factory=dict)
    peak_bytes: int = 0
    peak_processes: int = 0


class ProcessSampler:
    """Samples every ``interval_s`` in a thread of its own, from ``start()`` until ``stop()``."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.5):
        self._tracked: dict[str, _Tracked] = {}
        for name, pid in pids.items():
            try:
                self._tracked[name] = _Tracked(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        self._interval_s = interval_s
        self._machine_start = psutil.cpu_times()
        self.stolen_fraction = 0.0  # known once stopped
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)

    def start(self) -> ProcessSampler:
        self._machine_start = psutil.cpu_times()
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        """Per process: CPU seconds used since ``start()``, peak memory in MiB and the most processes seen."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self.stolen_fraction = _stolen(self._machine_start, psutil.cpu_times())
        return {
            name: {
                "cpu_seconds": round(sum(t.last_cpu[pid] - t.first_cpu.get(pid, 0.0) for pid in t.last_cpu), 3),
                "peak_memory_mib": round(t.peak_bytes / 2**20, 1),
                "processes": t.peak_processes,
            }
            for name, t in self._tracked.items()
        }

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self, first: bool = False) -> None:
        roots = {t.root.pid for t in self._tracked.values()}
        children = _children_by_parent()
        for tracked in self._tracked.values():
            tree = [tracked.root, *_descendants(tracked.root.pid, children, roots)]
            total = 0
            for process in tree:
                try:
                    with process.oneshot():
                        cpu = _cpu(process.cpu_times())
                        total += _memory(process, process is tracked.root)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if first:
                    tracked.first_cpu[process.pid] = cpu
                tracked.last_cpu[process.pid] = cpu
            tracked.peak_bytes = max(tracked.peak_bytes, total)
            tracked.peak_processes = max(tracked.peak_processes, len(tree))


def _children_by_parent() -> dict[int, list[psutil.Process]]:
    # One pass over /proc per sample: psutil's children() makes one per call, and the sampler's CPU is taken from
    # the machine it measures (it was half of the bench client's).
    children: dict[int, list[psutil.Process]] = {}
    for process in psutil.process_iter(["ppid"]):
        children.setdefault(process.info["ppid"], []).append(process)
    return children


def _descendants(pid: int, children: dict[int, list[psutil.Process]], roots: set[int]) -> list[psutil.Process]:
    """The process's descendants, leaving out those tracked in their own right (the supervisor's children)."""
    found = []
    for child in children.get(pid, []):
        if child.pid not in roots:
            found.extend([child, *_descendants(child.pid, children, roots)])
    return found


def _stolen(start, end) -> float:
    """The share of the machine's CPU time its host gave to other guests (``steal``; 0 where not reported)."""
    total = sum(end) - sum(start)
    return round((getattr(end, "steal", 0.0) - getattr(start, "steal", 0.0)) / total, 4) if total > 0 else 0.0


def python_loop_ms() -> float:
    """How long a fixed pure-Python loop takes here, best of three. A shared machine's speed changes from hour to
    hour: runs compare once their figures are read against it."""
    best = math.inf
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
