"""Wiring: ``build_engine`` makes the engine's adapters and use cases from the settings, in one function. Any adapter
can be passed in instead (the unit tests pass fakes); the handlers and the local cloud take the defaults.

Building connects to nothing: PostgreSQL's pool opens its connections in the background and Redis connects on the
first command. Three clients are made on first use instead, because a cold start measurably pays for them and
most invocations never need them: SQS (botocore, about 130 ms; the worker sends only to retry), ``@connections``
(botocore's credentials) and the Idempotency-Key store (Powertools' idempotency utility, about 120 ms; only a
placement with a key uses it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .clock import SystemClock
from .services.errors import Unavailable
from .settings import Settings

# Each import below is made where the part that needs it is built: a function pays at its cold start only for the
# libraries it uses (the authorizer needs no database driver, the worker no pydantic and no Powertools idempotency).
if TYPE_CHECKING:
    import redis

    from .adapters.dex import MockDexNetwork
    from .adapters.postgres import DbPool
    from .adapters.sqs import QuickSendSqs
    from .adapters.websocket import ConnectionsApi
    from .api.websocket import WebsocketSessions
    from .auth import Principal
    from .domain.commands import PlaceOrder
    from .services.execution import Executor
    from .services.launches import Launches
    from .services.market import Market
    from .services.market_feed import MarketFeed
    from .services.metrics import MetricsReader
    from .services.notifications import Notifier
    from .services.orders import OrderService
    from .services.ports import (
        Clock,
        Connections,
        MessageQueue,
        MetricsSink,
        Orders,
        OrderStatistics,
        PairLocks,
        Placement,
        PoolEvents,
        Push,
        RateLimiter,
        VenueData,
        VenueNetwork,
    )
    from .services.read_models import PlacedOrder
    from .services.sweeper import Sweeper
    from .services.triggers import Triggers

T = TypeVar("T")

SCHEMA_RESOURCE_ID = "order-engine-database-schema"
REDIS_CONNECTIONS = 100  # per process; a caller past that waits (up to 5 s) for one to come back


class FirstUse(Generic[T]):
    """``make()`` once, by the first caller that needs it, however many threads ask at once."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._made: T | None = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._made is not None

    def __call__(self) -> T:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
        return self._made


class PlacementOnFirstUse:
    """The Idempotency-Key placement, made when the first order is placed (Powertools' idempotency utility is the
    largest import of the REST function's cold start, and only placing needs it)."""

    def __init__(self, make: Callable[[], Placement]):
        self._placement = FirstUse(make)

    def place(self, user_id: str, key: str | None, order: PlaceOrder, context: Any = None) -> PlacedOrder:
        return self._placement().place(user_id, key, order, context)


@dataclass
class Engine:
    """Everything the handlers call, wired."""

    settings: Settings
    orders: OrderService
    notifier: Notifier
    executor: Executor
    triggers: Triggers
    launches: Launches
    pool_events: PoolEvents
    sweeper: Sweeper
    market: Market
    market_feed: MarketFeed
    metrics: MetricsReader
    websocket: WebsocketSessions
    rate_limiter: RateLimiter
    redelivery: MessageQueue
    metric_sink: MetricsSink
    checkpoint: Callable[[str], None]
    placement: Placement
    health_checks: dict[str, Callable[[], None]]
    prepare: Callable[[], None]  # the schema and the venues' genesis pools
    close: Callable[[], None]

    def health(self) -> dict[str, str]:
        results = {}
        for name, check in self.health_checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as error:  # any failure means the dependency is down for this caller
                results[name] = f"down: {type(error).__name__}"
        return results

    def migrate_database(self, request_type: str) -> dict[str, str]:
        if request_type != "Delete":  # the data outlives the stack's custom resource
            self.prepare()
        return {"PhysicalResourceId": SCHEMA_RESOURCE_ID}


def build_engine(
    settings: Settings,
    *,
    clock: Clock | None = None,
    orders: Orders | None = None,
    venues: VenueNetwork | None = None,
    statistics: OrderStatistics | None = None,
    locks: PairLocks | None = None,
    pool_events: PoolEvents | None = None,
    queue: MessageQueue | None = None,
    dead_letters: MessageQueue | None = None,
    connections: Connections | None = None,
    push: Push | None = None,
    rate_limiter: RateLimiter | None = None,
    placement: Callable[[OrderService], Placement] | None = None,
    metric_sink: MetricsSink | None = None,
) -> Engine:
    """The engine for these settings; each adapter given replaces the one the settings describe."""
    from .adapters.outages import DEPENDENCY_DOWN
    from .api.websocket import WebsocketSessions
    from .domain.limits import TokenBucket
    from .domain.orders import RetryPolicy
    from .faults import CrashPoints
    from .services.execution import Executor
    from .services.launches import Launches
    from .services.market import Market
    from .services.market_feed import MarketFeed
    from .services.metrics import MetricsReader
    from .services.notifications import Notifier
    from .services.orders import OrderService
    from .services.pool_watch import WatchedPoolEvents
    from .services.sweeper import Sweeper
    from .services.triggers import Triggers

    clock = clock or SystemClock()
    closers: list[Callable[[], None]] = []
    needs_database = orders is None or venues is None or statistics is None or locks is None
    db = database_pool(settings) if needs_database else None
    if db is not None:
        closers.append(db.close)
    needs_redis = connections is None or rate_limiter is None or placement is None
    redis_connection = redis_client(settings) if needs_redis else None
    if redis_connection is not None:
        closers.append(lambda: _disconnect(redis_connection))
    now_ms = lambda: int(clock.now().timestamp() * 1000)  # noqa: E731
    sqs = FirstUse(sqs_client)
    if pool_events is None:
        from .adapters.pool_events import SqsPoolEvents

        pool_events = SqsPoolEvents(sqs, settings.pool_events_queue_name, settings.pool_events_queue_url)
    if connections is None or rate_limiter is None:
        assert redis_connection is not None
        from .adapters.rate_limits import RedisRateLimiter
        from .adapters.redis_store import RedisConnections

        connections = connections or RedisConnections(redis_connection, now_ms)
        rate_limiter = rate_limiter or RedisRateLimiter(
            redis_connection, TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst), now_ms)
    if orders is None or locks is None or statistics is None:
        assert db is not None
        from .adapters.order_statistics import PostgresOrderStatistics
        from .adapters.postgres import PostgresOrders, PostgresPairLocks

        orders = orders or PostgresOrders(db)
        locks = locks or PostgresPairLocks(db)
        statistics = statistics or PostgresOrderStatistics(db)
    pool_events = WatchedPoolEvents(pool_events, orders, connections)  # what the venues' changes go through
    if venues is None:
        assert db is not None
        from .adapters.dex import MockDexNetwork

        venues = MockDexNetwork(db, settings.quote_latency, settings.swap_latency, settings.failure_rate,
                                now=clock.now, changes=pool_events)
    if queue is None or dead_letters is None:
        from .adapters.sqs import SqsOrderQueue

        queue = queue or SqsOrderQueue(sqs, settings.orders_queue_name, settings.orders_queue_url)
        dead_letters = dead_letters or SqsOrderQueue(sqs, settings.dead_letter_queue_name)
    if push is None:
        from .adapters.websocket import WebsocketPush

        push = WebsocketPush(FirstUse(lambda: connections_api(settings)))
    if placement is None:
        assert redis_connection is not None
        placement = _redis_placement(redis_connection)
    metric_sink = metric_sink or default_metric_sink(settings)

    notifier = Notifier(orders, connections, push)
    min_gain = settings.split_min_gain_bps
    order_service = OrderService(orders, queue, clock, publish=notifier.publish, metrics=metric_sink, venues=venues,
                                 min_gain_bps=min_gain, created=notifier.created)
    market_feed = MarketFeed(venues, connections, push)
    crash_points = CrashPoints(settings.crash_at, settings.crash_every)  # one count per process, as it kills one
    learn_listings_from(venues)
    sleep = getattr(clock, "sleep", lambda seconds: None)
    # The least time the venues take to land a swap: a sniper sends its swap that much before its pool opens.
    send_lead = timedelta(milliseconds=settings.swap_latency.low_ms)
    executor = Executor(orders, venues, notifier, clock, RetryPolicy(base_delay_seconds=settings.retry_base_seconds),
                        crash_points.reached, timedelta(seconds=settings.signature_validity_seconds),
                        metrics=metric_sink, queue=queue, send_lead=send_lead, sleep=sleep, min_gain_bps=min_gain)
    triggers = Triggers(orders, venues, queue, notifier, clock, locks, checkpoint=crash_points.reached,
                        wakeups=pool_events, sleep=sleep, send_lead=send_lead, min_gain_bps=min_gain)
    make_placement = placement
    placement_on_first_use = PlacementOnFirstUse(lambda: make_placement(order_service))
    queues = {settings.orders_queue_name: queue, settings.dead_letter_queue_name: dead_letters}

    def prepare() -> None:
        if db is None:
            return  # nothing of the engine's is in a database
        prepare_database(db, cast("MockDexNetwork", venues))

    def close() -> None:
        for closer in closers:
            closer()

    return Engine(
        settings=settings,
        orders=order_service,
        notifier=notifier,
        executor=executor,
        triggers=triggers,
        launches=Launches(venues, clock),
        pool_events=pool_events,
        sweeper=Sweeper(orders, queue, executor, clock, timedelta(seconds=settings.stuck_after_seconds),
                        settings.max_sweeps, notifier=notifier, triggers=triggers),
        market=Market(venues, clock, min_gain),
        market_feed=market_feed,
        metrics=MetricsReader(statistics, queues, settings.dead_letter_queue_name, connections),
        websocket=WebsocketSessions(
            connections, notifier, order_service, push, token_verifier(settings), DEPENDENCY_DOWN,
            placement=placement_on_first_use, market=market_feed, rate_limiter=rate_limiter,
            max_connections_per_user=settings.ws_max_connections_per_user, max_amount_in=settings.max_amount_in,
        ),
        rate_limiter=rate_limiter,
        redelivery=queue,
        metric_sink=metric_sink,
        checkpoint=crash_points.reached,
        placement=placement_on_first_use,
        health_checks={"postgres": orders.ping, "redis": connections.ping, "sqs": queue.ping},
        prepare=prepare,
        close=close,
    )


def token_verifier(settings: Settings) -> Callable[[str | None], Principal]:
    """Checks a bearer token against the settings' secret; needs no database (the authorizer is its own function)."""

    def verify(token: str | None) -> Principal:
        from .auth import verify_principal

        if not settings.jwt_secret:
            raise Unavailable("JWT_SECRET is not configured")
        return verify_principal(token, settings.jwt_secret)

    return verify


def database_pool(settings: Settings, max_size: int | None = None) -> DbPool:
    from .adapters.postgres import connect_pool

    return connect_pool(settings.database_url, max_size=max_size or settings.db_pool_size,
                        prepared_statements=settings.db_prepared_statements)


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


def _disconnect(client: redis.Redis | redis.RedisCluster) -> None:
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


def sqs_client() -> QuickSendSqs:
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


def connections_api(settings: Settings) -> ConnectionsApi:
    from .adapters.websocket import ConnectionsApi

    return ConnectionsApi.for_api(settings.websocket_api_id, settings.websocket_stage, settings.region,
                                  settings.websocket_endpoint_url)


def _redis_placement(client: Any) -> Callable[[OrderService], Placement]:
    def make(orders: OrderService) -> Placement:
        from .adapters.idempotency import RedisIdempotencyStore
        from .services.idempotency import IdempotentPlacement

        # redis-py's client is what Powertools' protocol describes, but its overloaded signatures do not type-check
        # against it.
        return IdempotentPlacement(orders, RedisIdempotencyStore(client=client))

    return make


def default_metric_sink(settings: Settings) -> MetricsSink:
    from .services.ports import NoMetrics

    if not settings.emf_metrics:
        return NoMetrics()
    from .adapters.emf_metrics import EmfMetrics

    return EmfMetrics(settings.metrics_namespace, settings.service_name)


def learn_listings_from(venues: VenueData) -> None:
    """Tokens and pairs listed after this process started are learnt from the venues on their first use."""
    from .domain.markets import LISTED_PAIRS
    from .domain.tokens import TOKENS

    TOKENS.learn_with(lambda key: None if (found := venues.listing(key)) is None else found.token)
    LISTED_PAIRS.learn_with(venues.pairs)


def prepare_database(pool: DbPool, dex: MockDexNetwork) -> None:
    """The schema, then the mock venues' genesis pools; both idempotent, so every deployment runs them."""
    from .adapters.postgres import migrate
    from .domain.markets import genesis_pools

    migrate(pool)
    dex.seed(genesis_pools())


# The process's own engine, for the handlers: built by the first invocation that needs it, so importing the app
# connects to nothing and the authorizer never builds it.

def settings() -> Settings:
    """The settings, with the secrets their ARNs name fetched once per process."""
    return _settings()


def _read_settings() -> Settings:
    from .adapters.secrets import resolve_secrets, secrets_manager_reader

    return Settings.from_env(resolve_secrets(os.environ, secrets_manager_reader()))


_settings = FirstUse(_read_settings)
_engine = FirstUse(lambda: build_engine(settings()))


def engine() -> Engine:
    return _engine()


def verify_token(token: str | None) -> Principal:
    return token_verifier(settings())(token)


def close_engine() -> None:
    """Closes this process's engine, if it was built: the local cloud calls it once new code has replaced this
    module (a deployment there) and the old code's invocations have ended."""
    if _engine.made:
        _engine().close()
