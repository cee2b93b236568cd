"""The venues' pool events, as a chain's logs: every change of a pool's state is published on the pool-events queue,
where the trigger function wakes the resting orders the new price may fill.

Changes are collected as they commit and sent when the invocation that made them ends (``flush``): one message per
invocation, naming each pool it changed once. The trigger reads the pools' current state, so ten swaps of one pool
in one invocation need one event, not ten; and the market orders' worker pays one send per batch, not one per swap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from ..services.ports import KeepChanges


class SqsPoolEvents:
    def __init__(self, client: Callable[[], Any], queue_name: str, queue_url: str | None = None):
        self._sqs = client
        self._name = queue_name
        self._url = queue_url
        self._changed: dict[str, tuple[str, str]] = {}  # pool id -> (base, quote)
        self._lock = threading.Lock()

    def changed(self, pool_id: str, base: str, quote: str) -> None:
        with self._lock:
            self._changed[pool_id] = (base, quote)

    def flush(self, keep: KeepChanges | None = None) -> int:
        """Publishes the changes collected so far (those ``keep`` returns, if given) as one event; how many pools
        it named."""
        with self._lock:
            changed, self._changed = self._changed, {}
        if changed and keep is not None:
            changed = keep(changed)
        if not changed:
            return 0
        body = json.dumps({"pools": [{"poolId": pool_id, "base": base, "quote": quote}
                                     for pool_id, (base, quote) in sorted(changed.items())]})
        try:
            self._sqs().send_message(QueueUrl=self._queue_url(), MessageBody=body)
        except Exception:
            with self._lock:  # kept for the next flush: a change is never dropped by a failed send
                for pool_id, pair in changed.items():
                    self._changed.setdefault(pool_id, pair)
            raise
        return len(changed)

    def wake(self, base: str, quote: str, delay_seconds: int) -> None:
        """An event sent now and delivered after ``delay_seconds`` (a message timer, at most 900 s): the trigger
        then evaluates the pair as if a pool had changed, e.g. when a pool opens to its snipers."""
        body = json.dumps({"pools": [], "wake": [{"base": base, "quote": quote}]})
        self._sqs().send_message(QueueUrl=self._queue_url(), MessageBody=body,
                                 DelaySeconds=max(0, min(900, delay_seconds)))

    def _queue_url(self) -> str:
        if self._url is None:
            self._url = self._sqs().get_queue_url(QueueName=self._name)["QueueUrl"]
        return self._url


def pool_ids_of(records: list[dict[str, Any]]) -> list[str]:
    """The pools an SQS batch of pool events says changed (each once; a wake-up names none)."""
    return sorted({pool["poolId"] for record in records for pool in json.loads(record["body"])["pools"]})


def pairs_of(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs an SQS batch of pool events names (each once)."""
    pairs: set[tuple[str, str]] = set()
    for record in records:
        body = json.loads(record["body"])
        pairs.update((pool["base"], pool["quote"]) for pool in body["pools"] + body.get("wake", []))
    return sorted(pairs)
