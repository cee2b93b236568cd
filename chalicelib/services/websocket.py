"""The WebSocket API's use cases: who may connect, and the actions a connection can send."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import ProblemError, ServiceUnavailable
from .notifications import Notifier
from .orders import OrderService
from .ports import Connections, Push


class WebsocketSessions:
    def __init__(
        self,
        connections: Connections,
        notifier: Notifier,
        orders: OrderService,
        push: Push,
        verify_token: Callable[[str | None], str],
        dependency_down: tuple[type[Exception], ...] = (),
    ):
        self._connections = connections
        self._notifier = notifier
        self._orders = orders
        self._push = push
        self._verify = verify_token
        self._dependency_down = dependency_down

    def connect(self, connection_id: str, token: str | None) -> str:
        """Registers the connection for the token's user; raises Unauthorized to refuse it."""
        user_id = self._verify(token)
        self._connections.add_connection(connection_id, user_id)
        return user_id

    def disconnect(self, connection_id: str) -> None:
        self._connections.remove_connection(connection_id)

    def receive(self, connection_id: str, body: str | None) -> None:
        try:
            self._dispatch(connection_id, body)
        except ProblemError as error:
            self._push.send(connection_id, _error_frame(body, error))
        except self._dependency_down:
            # The client cannot tell a lost request from a slow one: say so, so that it sends it again.
            unavailable = ServiceUnavailable("a service the engine depends on is unavailable; send this again shortly")
            self._push.send(connection_id, _error_frame(body, unavailable))

    def _dispatch(self, connection_id: str, body: str | None) -> None:
        message = _parse(body)
        action = message.get("action")
        user_id = self._connections.user_of(connection_id)
        if user_id is None:
            raise _WsError(401, "this connection is not registered; reconnect with a token")
        if action == "subscribe":
            order = self._orders.owned(user_id, _order_id(message))
            self._notifier.subscribe(connection_id, order.id)
        elif action == "unsubscribe":
            self._connections.unsubscribe(connection_id, _order_id(message))
        elif action == "ping":
            self._push.send(connection_id, {"type": "pong"})
        else:
            raise _WsError(400, f"unknown action {action!r}; expected subscribe, unsubscribe or ping")


class _WsError(ProblemError):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.title = {400: "Bad Request", 401: "Unauthorized"}[status]


def _error_frame(body: str | None, error: ProblemError) -> dict[str, Any]:
    """The problem, with the request's ``action`` and ``orderId`` so the client knows which request failed."""
    frame: dict[str, Any] = {"type": "error", "error": error.to_problem()}
    try:
        request = json.loads(body or "")
    except ValueError:
        return frame
    if isinstance(request, dict):
        frame.update({k: request[k] for k in ("action", "orderId") if isinstance(request.get(k), str)})
    return frame


def _parse(body: str | None) -> dict[str, Any]:
    try:
        message = json.loads(body or "")
    except ValueError:
        raise _WsError(400, 'messages must be JSON objects such as {"action": "subscribe", "orderId": "..."}') from None
    if not isinstance(message, dict):
        raise _WsError(400, "messages must be JSON objects")
    return message


def _order_id(message: dict[str, Any]) -> str:
    order_id = message.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise _WsError(400, "orderId is required")
    return order_id
