"""Runs the app's event-driven functions locally: an SQS event source mapping per ``on_sqs_message`` handler and a
schedule per ``@app.schedule`` one (``LOCAL_SCHEDULE_SECONDS`` shortens every rate, for tests)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import boto3
from botocore.config import Config
from chalice.app import ScheduledEventConfig, SQSEventConfig

from .aws import ensure_orders_queues, queue_arn
from .console import Console
from .event_source import INITIAL_CONCURRENCY, SCALE_UP_PER_S, QuickPollingSqs, SqsEventSourceMapping, SqsSource
from .lambda_runtime import CodeVersion, EnvironmentPool, function_timeout
from .ledger import Ledger
from .scheduler import Schedule, rate_seconds


def sqs_sources(pool: EnvironmentPool, sqs) -> list[tuple[SqsSource, str]]:
    """Each SQS event source with the name of its queue."""
    app = pool.warm_up().app
    sources = []
    for config in app.event_sources:
        if isinstance(config, SQSEventConfig):
            name = config.queue or (config.queue_arn or "").rsplit(":", 1)[-1]
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sources.append((SqsSource(config.name, url, queue_arn(sqs, url), config.batch_size,
                                      float(config.maximum_batching_window_in_seconds or 0)), name))
    return sources


@dataclass(frozen=True)
class WorkerSettings:
    """One worker process's settings, as the supervisor shares them out (see ``worker_envs``), read once."""

    concurrency: int  # the most invocations at once, as the event source's MaximumConcurrency
    initial_concurrency: int  # the mapping starts lower and scales, as Lambda's pollers do
    scale_up_per_s: float
    region: str
    schedule_every_s: float | None  # LOCAL_SCHEDULE_SECONDS: every schedule this often instead of its rate
    runs_schedules: bool  # EventBridge invokes a scheduled function once: only the first process runs them
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerSettings:
        override = env.get("LOCAL_SCHEDULE_SECONDS")
        return cls(
            concurrency=int(env.get("WORKER_CONCURRENCY", "32")),
            initial_concurrency=int(env.get("WORKER_INITIAL_CONCURRENCY", str(INITIAL_CONCURRENCY))),
            scale_up_per_s=float(env.get("WORKER_SCALE_UP_PER_S", str(SCALE_UP_PER_S))),
            region=env.get("AWS_DEFAULT_REGION", "us-east-1"),
            schedule_every_s=float(override) if override else None,
            runs_schedules=env.get("WORKER_SCHEDULES", "1") == "1",
            log_level=env.get("LOG_LEVEL", "INFO"),
        )


def main(settings: WorkerSettings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s worker %(levelname)s %(message)s")
    concurrency = settings.concurrency
    # One more environment for the schedules, so a busy worker still sweeps.
    pool = EnvironmentPool(max_size=concurrency + 1, code=CodeVersion(), console=Console.from_env(),
                           ledger=Ledger.from_env())
    session = boto3.session.Session()
    sqs = session.client("sqs", config=Config(max_pool_connections=concurrency + 8))
    polling = QuickPollingSqs(sqs, session.get_credentials())
    region = settings.region

    def invoker(name):
        return functools.partial(pool.invoke, name)

    mappings = [
        SqsEventSourceMapping(
            polling, source, invoker(source.function_name), concurrency, region=region,
            initial_concurrency=settings.initial_concurrency, scale_up_per_s=settings.scale_up_per_s,
            recreate_queue=functools.partial(ensure_orders_queues, sqs, queue_name,
                                             function_timeout(source.function_name)),
        ).start()
        for source, queue_name in sqs_sources(pool, sqs)
    ]
    schedules = [
        Schedule(config.name, settings.schedule_every_s or rate_seconds(config.schedule_expression),
                 invoker(config.name), region).start()
        for config in pool.warm_up().app.event_sources
        if isinstance(config, ScheduledEventConfig) and settings.runs_schedules
    ]
    print(f"worker ready: {', '.join(m.source.function_name for m in mappings)} up to x{concurrency}; "
          f"schedules: {', '.join(f'{s.name} every {s.every_s:g} s' for s in schedules) or 'none'}", flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    for schedule in schedules:
        schedule.stop()
    for mapping in mappings:
        mapping.stop()


if __name__ == "__main__":
    main(WorkerSettings.from_env(os.environ))
