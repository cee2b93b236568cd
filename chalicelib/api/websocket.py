"""The WebSocket API's use cases: who may connect, and the actions a connection can send.

Actions: ``subscribe`` and ``unsubscribe`` (an order's updates), ``ping``, ``submit``, which places an order
and streams its updates on the same connection, ``cancel`` (answered like ``DELETE /orders/{id}``),
``subscribeAccount`` (every update of every order of the caller, and ``order.created`` as each is placed; with
``since``, what was missed first) and ``subscribeMarket`` (``pool.update`` frames of some pools or all). Every
failure answers an error frame and keeps the connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..domain.limits import DEFAULT_MAX_AMOUNT_IN
from ..services.errors import ServiceError
from ..services.market_feed import MarketFeed
from ..services.notifications import REPLAY_MARGIN, Notifier
from ..services.orders import OrderService
from ..services.ports import Connections, Placement, Push, RateLimiter
from .problems import (
    BadRequest,
    Forbidden,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    problem_for,
)

if TYPE_CHECKING:
    from ..auth import Principal

ACTIONS = ("subscribe", "unsubscribe", "ping", "submit", "cancel", "subscribeAccount", "subscribeMarket")
MAX_POOL_IDS = 100


class _Unlimited:
    def wait_ms(self, key: str, cost: int = 1) -> int:
        return 0


UNLIMITED = _Unlimited()


class WebsocketSessions:
    def __init__(
        self,
        connections: Connections,
        notifier: Notifier,
        orders: OrderService,
        push: Push,
        verify_token: Callable[[str | None], Principal],
        dependency_down: tuple[type[Exception], ...] = (),
        placement: Placement | None = None,
        market: MarketFeed | None = None,
        rate_limiter: RateLimiter = UNLIMITED,
        max_connections_per_user: int = 0,
        max_amount_in: Decimal = DEFAULT_MAX_AMOUNT_IN,
    ):
        self._connections = connections
        self._notifier = notifier
        self._orders = orders
        self._push = push
        self._verify = verify_token
        self._dependency_down = dependency_down
        self._placement = placement
        self._market = market
        self._rate_limiter = rate_limiter
        self._max_connections = max_connections_per_user
        self._max_amount_in = max_amount_in

    def connect(self, connection_id: str, token: str | None) -> str:
        """Registers the connection for the token's user; refuses it with Unauthenticated (from the token's check) or
        TooManyRequests."""
        principal = self._verify(token)
        if not self._connections.add_connection(connection_id, principal.user_id, self._max_connections,
                                                read_only=not principal.can_trade):
            raise TooManyRequests(f"at most {self._max_connections} WebSocket connections per user are open at "
                                  "once; close one first", retry_after_seconds=1)
        return principal.user_id

    def disconnect(self, connection_id: str) -> None:
        self._connections.remove_connection(connection_id)

    def receive(self, connection_id: str, body: str | None, context: Any = None) -> None:
        try:
            self._dispatch(connection_id, body, context)
        except ProblemError as error:
            self._push.send(connection_id, _error_frame(body, error))
        except ServiceError as refused:  # from the use cases this connection asked for
            self._push.send(connection_id, _error_frame(body, problem_for(refused)))
        except self._dependency_down:
            # The client cannot tell a lost request from a slow one: say so, so that it sends it again.
            unavailable = ServiceUnavailable("a service the engine depends on is unavailable; send this again shortly")
            self._push.send(connection_id, _error_frame(body, unavailable))

    def _dispatch(self, connection_id: str, body: str | None, context: Any) -> None:
        message = _parse(body)
        action = message.get("action")
        if action not in ACTIONS:
            raise BadRequest(f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}",
                             [{"field": "action", "message": f"must be one of: {', '.join(ACTIONS)}"}])
        if action == "ping":
            self._push.send(connection_id, {"type": "pong"})
            return
        user_id = self._connections.user_of(connection_id)
        if user_id is None:
            raise Unauthorized("this connection is not registered; reconnect with a token")
        wait_ms = self._rate_limiter.wait_ms(f"user:{user_id}")
        if wait_ms:
            raise TooManyRequests("too many requests; slow down", retry_after_seconds=-(-wait_ms // 1000))
        if action == "subscribe":
            self._notifier.subscribe_own(connection_id, user_id, _order_id(message))
        elif action == "unsubscribe":
            self._connections.unsubscribe(connection_id, _order_id(message))
        elif action == "cancel":
            self._cancel(connection_id, user_id, _order_id(message))
        elif action == "subscribeAccount":
            since = _since(message)
            self._push.send(connection_id, {
                "type": "subscribed", "stream": "account", "since": None if since is None else since.isoformat(),
                "replayFrom": None if since is None else (since - REPLAY_MARGIN).isoformat()})
            self._notifier.subscribe_account(connection_id, user_id, since)
        elif action == "subscribeMarket":
            if self._market is None:
                raise BadRequest("this endpoint has no market stream")
            pool_ids = _pool_ids(message)
            snapshots = self._market.follow(connection_id, pool_ids)
            self._push.send(connection_id, {"type": "subscribed", "stream": "market", "poolIds": pool_ids})
            for snapshot in snapshots:
                self._push.send(connection_id, snapshot.message())
        else:
            self._submit(connection_id, user_id, message, context)

    def _cancel(self, connection_id: str, user_id: str, order_id: str) -> None:
        if not self._connections.may_trade(connection_id):
            raise Forbidden("this connection's token may read orders but not cancel them (no orders:write scope)")
        details = self._orders.cancel(user_id, order_id)
        from .views import Order  # pydantic, only once a connection cancels

        self._push.send(connection_id, {"type": "order.cancel", "orderId": details.order.id, "status": 200,
                                        "order": Order.of_details(details).model_dump(mode="json")})

    def _submit(self, connection_id: str, user_id: str, message: dict[str, Any], context: Any) -> None:
        if self._placement is None:
            raise BadRequest("this endpoint does not take orders")
        if not self._connections.may_trade(connection_id):
            raise Forbidden("this connection's token may read orders but not place them (no orders:write scope)")
        from .requests import parse_submit  # pydantic, only once a connection submits: the worker never does

        order, key = parse_submit(message, self._max_amount_in)
        placed = self._placement.place(user_id, key, order.to_command(), context)
        accepted = {"type": "order.accepted", "orderId": placed.order_id, "status": str(placed.status)}
        if key is not None:
            accepted["idempotencyKey"] = key
        self._push.send(connection_id, accepted)
        # Subscribing replays the order's stream from its first event, so nothing the worker did meanwhile is lost
        # (from the first, unless this connection's account stream is further already: nothing comes twice).
        self._notifier.subscribe(connection_id, placed.order_id, after_seq=0)


def _error_frame(body: str | None, error: ProblemError) -> dict[str, Any]:
    """The problem, with the request's ``action``, ``orderId`` and ``idempotencyKey`` so the client knows which
    request failed."""
    frame: dict[str, Any] = {"type": "error", "error": error.to_problem()}
    try:
        request = json.loads(body or "")
    except (ValueError, RecursionError):
        return frame
    if isinstance(request, dict):
        frame.update({k: request[k] for k in ("action", "orderId", "idempotencyKey")
                      if isinstance(request.get(k), str) and len(request[k]) <= 255})
    return frame


def _parse(body: str | None) -> dict[str, Any]:
    try:
        message = json.loads(body or "", parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BadRequest('messages must be JSON objects such as {"action": "subscribe", "orderId": "..."}') from None
    if not isinstance(message, dict):
        raise BadRequest("messages must be JSON objects")
    return message


def _since(message: dict[str, Any]) -> datetime | None:
    """An account stream's ``since``: an ISO 8601 time with a timezone, such as the ``at`` of the last update the
    client had (its cursor)."""
    since = message.get("since")
    if since is None:
        return None
    try:
        parsed = datetime.fromisoformat(since) if isinstance(since, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequest("since must be an ISO 8601 time with a timezone, e.g. the at of the last update you had",
                         [{"field": "since", "message": "must be an ISO 8601 time with a timezone"}])
    return parsed


def _pool_ids(message: dict[str, Any]) -> list[str] | None:
    pool_ids = message.get("poolIds")
    if pool_ids is None:
        return None  # every pool
    if (not isinstance(pool_ids, list) or not 0 < len(pool_ids) <= MAX_POOL_IDS
            or not all(isinstance(p, str) and 0 < len(p) <= 64 for p in pool_ids)):
        raise BadRequest(f"poolIds must be a list of 1-{MAX_POOL_IDS} pool ids (or left out: every pool)",
                         [{"field": "poolIds", "message": f"must be a list of 1-{MAX_POOL_IDS} pool ids"}])
    return sorted(set(pool_ids))


def _order_id(message: dict[str, Any]) -> str:
    order_id = message.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise BadRequest("orderId is required", [{"field": "orderId", "message": "must be a non-empty string"}])
    return order_id
