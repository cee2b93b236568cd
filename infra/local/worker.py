"""Runs the app's event-driven functions locally: an SQS event source mapping per ``on_sqs_message`` handler and a
schedule per ``@app.schedule`` one (``LOCAL_SCHEDULE_SECONDS`` shortens every rate, for tests)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading

import boto3
from botocore.config import Config
from chalice.app import ScheduledEventConfig, SQSEventConfig

from .aws import ensure_orders_queues, queue_arn
from .console import Console
from .event_source import INITIAL_CONCURRENCY, SCALE_UP_PER_S, SqsEventSourceMapping, SqsSource
from .lambda_runtime import CodeVersion, EnvironmentPool, function_timeout
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


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s worker %(levelname)s %(message)s")
    # The most invocations at once, as the event source's MaximumConcurrency: the mapping starts lower and scales.
    # With several worker processes, each has its share of the concurrency, the start and the growth.
    concurrency = int(os.environ.get("WORKER_CONCURRENCY", "32"))
    initial = int(os.environ.get("WORKER_INITIAL_CONCURRENCY", str(INITIAL_CONCURRENCY)))
    scale_up_per_s = float(os.environ.get("WORKER_SCALE_UP_PER_S", str(SCALE_UP_PER_S)))
    # One more environment for the schedules, so a busy worker still sweeps.
    pool = EnvironmentPool(max_size=concurrency + 1, code=CodeVersion(), console=Console.from_env())
    sqs = boto3.session.Session().client("sqs", config=Config(max_pool_connections=concurrency + 8))
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

    def invoker(name):
        return functools.partial(pool.invoke, name)

    mappings = [
        SqsEventSourceMapping(
            sqs, source, invoker(source.function_name), concurrency, region=region, initial_concurrency=initial,
            scale_up_per_s=scale_up_per_s,
            recreate_queue=functools.partial(ensure_orders_queues, sqs, queue_name,
                                             function_timeout(source.function_name)),
        ).start()
        for source, queue_name in sqs_sources(pool, sqs)
    ]
    override = os.environ.get("LOCAL_SCHEDULE_SECONDS")
    schedules = [
        Schedule(config.name, float(override) if override else rate_seconds(config.schedule_expression),
                 invoker(config.name), region).start()
        for config in pool.warm_up().app.event_sources
        if isinstance(config, ScheduledEventConfig) and os.environ.get("WORKER_SCHEDULES", "1") == "1"
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
    main()
