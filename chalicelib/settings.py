"""Every setting the functions read, from environment variables, in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .domain.limits import DEFAULT_MAX_AMOUNT_IN
from .domain.venues import LatencyRange

LOCAL_JWT_SECRET = "local-development-secret-not-for-production"
MAX_RECEIVE_COUNT = 5  # deliveries of an order's message before SQS moves it to the dead-letter queue


@dataclass(frozen=True)
class Settings:
    stage: str
    database_url: str
    redis_url: str
    orders_queue_name: str
    orders_queue_url: str | None
    jwt_secret: str | None
    websocket_api_id: str
    websocket_stage: str
    websocket_endpoint_url: str | None
    quote_latency: LatencyRange
    swap_latency: LatencyRange
    failure_rate: float
    db_pool_size: int
    retry_base_seconds: int
    stuck_after_seconds: int
    max_sweeps: int
    signature_validity_seconds: int = 60
    crash_at: str | None = None
    crash_every: int = 1
    dead_letter_queue_name: str = "orders-dlq"
    max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN
    rate_limit_per_second: float = 20.0
    rate_limit_burst: int = 100
    ws_max_connections_per_user: int = 20
    redis_cluster: bool = False
    db_prepared_statements: bool = True
    region: str = "us-east-1"
    # Business metrics as CloudWatch EMF lines (Powertools Metrics); off locally, where /metrics reads the database.
    emf_metrics: bool = False
    metrics_namespace: str = "OrderEngine"
    service_name: str = "order-engine"
    pool_events_queue_name: str = "pool-events"
    pool_events_queue_url: str | None = None
    split_min_gain_bps: Decimal = Decimal(1)

    @property
    def websocket_client_url(self) -> str:
        """Where a client connects to the WebSocket API: the local gateway's, or API Gateway's wss:// endpoint."""
        if self.websocket_endpoint_url:
            return "ws" + self.websocket_endpoint_url.removeprefix("http")  # http→ws, https→wss
        return f"wss://{self.websocket_api_id}.execute-api.{self.region}.amazonaws.com/{self.websocket_stage}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        stage = env.get("STAGE", "local")
        failure_rate = float(env.get("DEX_FAILURE_RATE", "0.05"))
        if not 0 <= failure_rate <= 1:
            raise ValueError("DEX_FAILURE_RATE must be between 0 and 1")
        queue_name = env.get("ORDERS_QUEUE_NAME", "orders")
        max_amount_in = Decimal(env.get("MAX_AMOUNT_IN", str(DEFAULT_MAX_AMOUNT_IN)))
        if not max_amount_in.is_finite() or max_amount_in <= 0:
            raise ValueError("MAX_AMOUNT_IN must be a positive number")
        split_min_gain_bps = _decimal(env.get("SPLIT_MIN_GAIN_BPS", "1"))
        if split_min_gain_bps is None or not split_min_gain_bps.is_finite() or split_min_gain_bps < 0:
            raise ValueError("SPLIT_MIN_GAIN_BPS must be a number of basis points, 0 or more")
        return cls(
            stage=stage,
            database_url=env.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            orders_queue_name=queue_name,
            orders_queue_url=env.get("ORDERS_QUEUE_URL") or None,
            jwt_secret=env.get("JWT_SECRET") or (LOCAL_JWT_SECRET if stage == "local" else None),
            websocket_api_id=env.get("WEBSOCKET_API_ID", "local"),
            websocket_stage=env.get("WEBSOCKET_STAGE", "api"),
            websocket_endpoint_url=env.get("WEBSOCKET_ENDPOINT_URL") or None,
            quote_latency=LatencyRange.parse(env.get("DEX_QUOTE_LATENCY_MS", "150-250")),
            swap_latency=LatencyRange.parse(env.get("DEX_SWAP_LATENCY_MS", "2000-3000")),
            failure_rate=failure_rate,
            db_pool_size=int(env.get("DB_POOL_SIZE", "10")),
            retry_base_seconds=int(env.get("RETRY_BASE_SECONDS", "2")),
            stuck_after_seconds=int(env.get("STUCK_AFTER_SECONDS", "120")),
            max_sweeps=int(env.get("MAX_SWEEPS", "3")),
            signature_validity_seconds=int(env.get("SIGNATURE_VALIDITY_SECONDS", "60")),
            crash_at=env.get("FAULT_CRASH_AT") or None,
            crash_every=int(env.get("FAULT_CRASH_EVERY", "1")),
            dead_letter_queue_name=env.get("ORDERS_DLQ_NAME", f"{queue_name}-dlq"),
            max_amount_in=max_amount_in,
            rate_limit_per_second=float(env.get("RATE_LIMIT_PER_SECOND", "20")),
            rate_limit_burst=int(env.get("RATE_LIMIT_BURST", "100")),
            ws_max_connections_per_user=int(env.get("WS_MAX_CONNECTIONS_PER_USER", "20")),
            redis_cluster=_flag(env.get("REDIS_CLUSTER", "0")),
            db_prepared_statements=_flag(env.get("DB_PREPARED_STATEMENTS", "1")),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            emf_metrics=not _flag(env.get("POWERTOOLS_METRICS_DISABLED", "1" if stage == "local" else "0")),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "OrderEngine"),
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "order-engine"),
            pool_events_queue_name=env.get("POOL_EVENTS_QUEUE_NAME", "pool-events"),
            pool_events_queue_url=env.get("POOL_EVENTS_QUEUE_URL") or None,
            split_min_gain_bps=split_min_gain_bps,
        )


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value.strip())
    except ArithmeticError:  # decimal.InvalidOperation: not a number
        return None


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


ORDERS_QUEUE_NAME = os.environ.get("ORDERS_QUEUE_NAME", "orders")
POOL_EVENTS_QUEUE_NAME = os.environ.get("POOL_EVENTS_QUEUE_NAME", "pool-events")
