"""Wiring: builds the adapters and services from the settings, once per process and lazily, so importing the
app connects to nothing (cold starts stay short) and every handler shares one set of connections."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from .clock import SystemClock
from .services.errors import Unavailable
from .settings import Settings

# Each import below is made where the resource that needs it is built: a function pays at its cold start only for
# the libraries it uses (the authorizer needs no database driver, the worker no pydantic and no boto3).
if TYPE_CHECKING:
    import redis
    from aws_lambda_powertools.utilities.idempotency.persistence.redis import RedisClientProtocol

    from .adapters.dex import MockDexNetwork
    from .adapters.rate_limits import RedisRateLimiter
    from .adapters.sqs import SqsOrderQueue
    from .api.websocket import WebsocketSessions
    from .auth import Principal
    from .services.execution import Executor
    from .services.idempotency import IdempotentPlacement
    from .services.market import Market
    from .services.metrics import MetricsReader
    from .services.notifications import Notifier
    from .services.orders import OrderService
    from .services.ports import MetricsSink
    from .services.sweeper import Sweeper


class Resources:
    """Process-wide clients: one PostgreSQL pool, one Redis client, one SQS client."""

    def __init__(self, settings: Settings):
        from .adapters.dex import MockDexNetwork
        from .adapters.postgres import PostgresOrders, connect_pool
        from .adapters.rate_limits import RedisRateLimiter
        from .adapters.redis_store import RedisConnections
        from .adapters.sqs import SqsOrderQueue
        from .adapters.websocket import ConnectionsApi, WebsocketPush
        from .domain.limits import TokenBucket
        from .faults import CrashPoints

        self.settings = settings
        self.clock = SystemClock()
        self.db = connect_pool(settings.database_url, max_size=settings.db_pool_size,
                               prepared_statements=settings.db_prepared_statements)
        self.redis = redis_client(settings)
        # Creating the client (loading its service model) is a good part of a cold start, and most invocations
        # never send: the worker only to retry, the REST API only to place.
        self.sqs = OnFirstUse(sqs_client)
        # One count per process, like the process the crash point kills.
        self.crash_points = CrashPoints(settings.crash_at, settings.crash_every)
        self.orders = PostgresOrders(self.db)
        now_ms = lambda: int(self.clock.now().timestamp() * 1000)  # noqa: E731
        self.connections = RedisConnections(self.redis, now_ms)
        self.rate_limiter = RedisRateLimiter(
            self.redis, TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst), now_ms)
        self.queue = SqsOrderQueue(self.sqs, settings.orders_queue_name, settings.orders_queue_url)
        self.dead_letters = SqsOrderQueue(self.sqs, settings.dead_letter_queue_name)
        # Every handler pushes: the REST API's cancel, the WebSocket handlers, the worker and the sweeper.
        self.push = WebsocketPush(cast(ConnectionsApi, OnFirstUse(lambda: ConnectionsApi.for_api(
            settings.websocket_api_id, settings.websocket_stage, settings.region, settings.websocket_endpoint_url))))
        self.metric_sink = metric_sink(settings)
        self.dex = MockDexNetwork(
            self.db,
            settings.quote_latency,
            settings.swap_latency,
            settings.failure_rate,
            now=self.clock.now,
            sleep=self.clock.sleep,
        )

    def health(self) -> dict[str, str]:
        checks: dict[str, Callable[[], Any]] = {
            "postgres": self.orders.ping,
            "redis": self.connections.ping,
            "sqs": self.queue.ping,
        }
        results = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as error:  # any failure means the dependency is down for this caller
                results[name] = f"down: {type(error).__name__}"
        return results


def metric_sink(settings: Settings) -> MetricsSink:
    from .services.ports import NoMetrics

    if not settings.emf_metrics:
        return NoMetrics()
    from .adapters.emf_metrics import EmfMetrics

    return EmfMetrics(settings.metrics_namespace, settings.service_name)


class OnFirstUse:
    """Stands for the object ``build`` returns, built when one of its attributes is first used."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._target: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            with self._lock:
                if self._target is None:
                    self._target = self._build()
        return getattr(self._target, name)


def sqs_client() -> Any:
    import botocore.session
    from botocore.config import Config

    from .adapters.sqs import QuickSendSqs

    # botocore's own session: boto3 adds nothing used here, and importing it (with s3transfer) costs about 100 ms.
    session = botocore.session.get_session()
    client = session.create_client(
        "sqs", config=Config(connect_timeout=2, read_timeout=25, retries={"max_attempts": 3, "mode": "standard"},
                             max_pool_connections=64)  # as many as the invocations that may share it locally
    )
    return QuickSendSqs(client, session.get_credentials())


REDIS_CONNECTIONS = 100  # per process; a caller past that waits (up to 5 s) for one to come back


def redis_client(settings: Settings) -> redis.Redis | redis.RedisCluster:
    """ElastiCache Serverless speaks the cluster protocol (``REDIS_CLUSTER=1``, TLS with ``rediss://``)."""
    import redis

    options = {"socket_timeout": 5, "socket_connect_timeout": 2}
    if settings.redis_cluster:
        return redis.RedisCluster.from_url(settings.redis_url, **options)
    # Blocking: the local worker runs hundreds of orders at once in one process, and redis-py's pool raises
    # MaxConnectionsError past 100 instead of waiting the moment it takes for a connection to come back.
    pool = redis.BlockingConnectionPool.from_url(settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=5,
                                                 health_check_interval=30, **options)
    return redis.Redis(connection_pool=pool)


def prepare_database(pool: Any, dex: MockDexNetwork) -> None:
    """The schema, then the mock venues' genesis pools; both idempotent, so every deployment runs them."""
    from .adapters.postgres import migrate
    from .domain.markets import genesis_pools

    migrate(pool)
    dex.seed(genesis_pools())


SCHEMA_RESOURCE_ID = "order-engine-database-schema"

_lock = threading.Lock()


@functools.cache
def settings() -> Settings:
    """The settings, with the secrets their ARNs name fetched once per process."""
    from .adapters.secrets import resolve_secrets, secrets_manager_reader

    return Settings.from_env(resolve_secrets(os.environ, secrets_manager_reader()))


@functools.cache
def _resources() -> Resources:
    return Resources(settings())


def resources() -> Resources:
    with _lock:
        return _resources()


def close_resources() -> None:
    """Closes this process's clients, if they were built: the local cloud calls it once new code has replaced this
    module (a deployment there) and the old code's invocations have ended."""
    if _resources.cache_info().currsize:
        built = _resources()
        built.db.close()
        pool = getattr(built.redis, "connection_pool", None)
        if pool is not None:
            pool.disconnect()


class Engine:
    """The services one Chalice app instance uses, built on first use."""

    @functools.cached_property
    def _res(self) -> Resources:
        return resources()

    @functools.cached_property
    def notifier(self) -> Notifier:
        from .services.notifications import Notifier

        return Notifier(self._res.orders, self._res.connections, self._res.push)

    @functools.cached_property
    def orders(self) -> OrderService:
        from .services.orders import OrderService

        return OrderService(self._res.orders, self._res.queue, self._res.clock,
                            publish=lambda order_id, events: self.notifier.publish(order_id, events),
                            metrics=self._res.metric_sink)

    @functools.cached_property
    def placement(self) -> IdempotentPlacement:
        from .adapters.idempotency import RedisIdempotencyStore
        from .services.idempotency import IdempotentPlacement

        # redis-py's client is what Powertools' protocol describes, but its overloaded signatures do not type-check
        # against it.
        return IdempotentPlacement(self.orders, RedisIdempotencyStore(
            client=cast("RedisClientProtocol", self._res.redis)))

    @functools.cached_property
    def executor(self) -> Executor:
        from .domain.orders import RetryPolicy
        from .services.execution import Executor

        settings = self._res.settings
        retry = RetryPolicy(base_delay_seconds=settings.retry_base_seconds)
        return Executor(self._res.orders, self._res.dex, self.notifier, self._res.clock, retry, self.checkpoint,
                        timedelta(seconds=settings.signature_validity_seconds), metrics=self._res.metric_sink)

    @property
    def checkpoint(self) -> Callable[[str], None]:
        return self._res.crash_points.reached

    @functools.cached_property
    def sweeper(self) -> Sweeper:
        from .services.sweeper import Sweeper

        settings = self._res.settings
        return Sweeper(self._res.orders, self._res.queue, self.executor, self._res.clock,
                       timedelta(seconds=settings.stuck_after_seconds), settings.max_sweeps,
                       notifier=self.notifier)

    @property
    def metric_sink(self) -> MetricsSink:
        return self._res.metric_sink

    @property
    def redelivery(self) -> SqsOrderQueue:
        return self._res.queue

    @functools.cached_property
    def websocket(self) -> WebsocketSessions:
        from .adapters.outages import DEPENDENCY_DOWN
        from .api.websocket import WebsocketSessions

        settings = self._res.settings
        return WebsocketSessions(
            self._res.connections, self.notifier, self.orders, self._res.push, self.verify,
            DEPENDENCY_DOWN, placement=self.placement, rate_limiter=self._res.rate_limiter,
            max_connections_per_user=settings.ws_max_connections_per_user, max_amount_in=settings.max_amount_in,
        )

    @functools.cached_property
    def market(self) -> Market:
        from .services.market import Market

        return Market(self._res.dex)

    @functools.cached_property
    def metrics(self) -> MetricsReader:
        from .services.metrics import MetricsReader

        settings = self._res.settings
        queues = {settings.orders_queue_name: self._res.queue, settings.dead_letter_queue_name: self._res.dead_letters}
        from .adapters.order_statistics import PostgresOrderStatistics

        return MetricsReader(PostgresOrderStatistics(self._res.db), queues, settings.dead_letter_queue_name,
                             self._res.connections)

    @property
    def rate_limiter(self) -> RedisRateLimiter:
        return self._res.rate_limiter

    @property
    def max_amount_in(self) -> Decimal:
        return self._res.settings.max_amount_in

    @property
    def dex(self) -> MockDexNetwork:
        return self._res.dex

    def verify(self, token: str | None) -> Principal:
        from .auth import verify_principal

        secret = settings().jwt_secret  # not the resources: the authorizer needs no database
        if not secret:
            raise Unavailable("JWT_SECRET is not configured")
        return verify_principal(token, secret)

    def health(self) -> dict[str, str]:
        return self._res.health()

    def migrate_database(self, request_type: str) -> dict[str, str]:
        if request_type != "Delete":  # the data outlives the stack's custom resource
            prepare_database(self._res.db, self._res.dex)
        return {"PhysicalResourceId": SCHEMA_RESOURCE_ID}
