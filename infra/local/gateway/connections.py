"""The open WebSocket connections and API Gateway's ``@connections`` management API over them:
``POST|GET|DELETE /{stage}/@connections/{id}``, answering 410 ``GoneException`` for an unknown or closed one."""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from ..ledger import API_GATEWAY, CONNECTIONS_POST, Ledger
from .limits import MAX_MESSAGE_BYTES


def now_ms() -> int:
    return int(time.time() * 1000)


def new_connection_id() -> str:
    # API Gateway's ids are base64 with padding, e.g. "Vcr3Yd5KoAMCK3w="; clients percent-encode them in paths.
    return base64.b64encode(os.urandom(11)).decode().replace("/", "_").replace("+", "-")


@dataclass
class Connection:
    id: str
    ws: web.WebSocketResponse
    connected_at: int
    source_ip: str
    user_agent: str
    headers: dict[str, str]
    last_active: int = field(default_factory=now_ms)


class ConnectionsManagement:
    """The ``@connections`` API over ``connections``, the open connections by id, which the WebSocket API keeps."""

    def __init__(self, connections: dict[str, Connection], ledger: Ledger | None = None):
        self._connections = connections
        self._ledger = ledger or Ledger(None)

    def add_routes(self, app: web.Application, stage: str) -> None:
        path = f"/{stage}/@connections/{{connection_id}}"
        app.router.add_post(path, self.post_to_connection)
        app.router.add_get(path, self.get_connection)
        app.router.add_delete(path, self.delete_connection)

    def _live(self, request: web.Request) -> Connection | None:
        connection = self._connections.get(request.match_info["connection_id"])
        if connection is None or connection.ws.closed:
            return None
        return connection

    @staticmethod
    def _gone(connection_id: str) -> web.Response:
        return web.json_response(
            {"message": f"Connection {connection_id} is gone"}, status=410,
            headers={"x-amzn-ErrorType": "GoneException", "x-amzn-RequestId": str(uuid.uuid4())},
        )

    async def post_to_connection(self, request: web.Request) -> web.Response:
        self._ledger.record(API_GATEWAY, CONNECTIONS_POST)
        data = await request.read()
        connection = self._live(request)
        if connection is None:
            return self._gone(request.match_info["connection_id"])
        if len(data) > MAX_MESSAGE_BYTES:
            return web.json_response({"message": "Message too long"}, status=413,
                                     headers={"x-amzn-ErrorType": "PayloadTooLargeException"})
        try:
            await connection.ws.send_str(data.decode("utf-8", "replace"))
        except ConnectionError:
            return self._gone(connection.id)
        return web.Response(status=200)

    async def get_connection(self, request: web.Request) -> web.Response:
        connection = self._live(request)
        if connection is None:
            return self._gone(request.match_info["connection_id"])

        def iso(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

        return web.json_response({
            "connectedAt": iso(connection.connected_at),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "lastActiveAt": iso(connection.last_active),
        })

    async def delete_connection(self, request: web.Request) -> web.Response:
        connection = self._live(request)
        if connection is None:
            return self._gone(request.match_info["connection_id"])
        await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")
        return web.Response(status=204)
