"""The open WebSocket connections and API Gateway's ``@connections`` management API over them:
``POST|GET|DELETE /{stage}/@connections/{id}``, answering 410 ``GoneException`` for an unknown or closed one.

Every gateway process accepts WebSocket connections (the kernel spreads them over the processes), and a connection
lives in the process that accepted it. Its id names that process (the first of its 11 random bytes), so a
``@connections`` request that reached another process is passed on to the owner's own management port, once."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import ClientError, ClientSession, TCPConnector, WSCloseCode, web

from ..ledger import API_GATEWAY, CONNECTIONS_POST, Ledger
from .limits import MAX_MESSAGE_BYTES


def now_ms() -> int:
    return int(time.time() * 1000)


def new_connection_id(owner: int = 0) -> str:
    """An id for a connection accepted by gateway process ``owner`` (0-255)."""
    # API Gateway's ids are base64 with padding, e.g. "Vcr3Yd5KoAMCK3w="; clients percent-encode them in paths.
    return base64.b64encode(bytes([owner]) + os.urandom(10)).decode().replace("/", "_").replace("+", "-")


def owner_of(connection_id: str) -> int | None:
    """The gateway process that accepted the connection; None for an id no gateway gave."""
    try:
        raw = base64.b64decode(connection_id.replace("_", "/").replace("-", "+"), validate=True)
    except ValueError:
        return None
    return raw[0] if len(raw) == 11 else None


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

    def __init__(self, connections: dict[str, Connection], ledger: Ledger | None = None, index: int = 0,
                 peers: dict[int, str] | None = None):
        self._connections = connections
        self._ledger = ledger or Ledger(None)
        self._index = index  # this gateway process
        self._peers = peers or {}  # each other process's management endpoint, by its index
        self._session: ClientSession | None = None

    def add_routes(self, app: web.Application, stage: str, forward: bool = True) -> None:
        """The API's routes; ``forward`` passes a request for another process's connection on to it (the public
        endpoint does; a process's own management port answers for its connections alone)."""
        path = f"/{stage}/@connections/{{connection_id}}"
        handlers = {"POST": self.post_to_connection, "GET": self.get_connection, "DELETE": self.delete_connection}
        for method, handler in handlers.items():
            app.router.add_route(method, path, self._forwarding(handler) if forward else handler)
        if forward:
            app.on_cleanup.append(self._close_session)

    def _forwarding(self, handler: Callable[[web.Request], Awaitable[web.Response]],
                    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def forward_or_handle(request: web.Request) -> web.Response:
            if request.method == "POST":
                self._ledger.record(API_GATEWAY, CONNECTIONS_POST)  # once, where the caller's request arrived
            owner = owner_of(request.match_info["connection_id"])
            peer = self._peers.get(owner) if owner is not None and owner != self._index else None
            return await (handler(request) if peer is None else self._forward(request, peer))

        return forward_or_handle

    async def _forward(self, request: web.Request, peer: str) -> web.Response:
        if self._session is None:
            self._session = ClientSession(connector=TCPConnector(limit=128))  # kept alive, as the callers' are
        try:
            async with self._session.request(request.method, peer + request.rel_url.raw_path,
                                             data=await request.read()) as answer:
                headers = {name: value for name, value in answer.headers.items()
                           if name.lower() in ("content-type", "x-amzn-errortype", "x-amzn-requestid")}
                return web.Response(status=answer.status, body=await answer.read(), headers=headers)
        except ClientError:
            # The owner is not there (it died, and its connections with it; it is being started again).
            return self._gone(request.match_info["connection_id"])

    async def _close_session(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

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
