"""The open WebSocket connections and API Gateway's ``@connections`` management API over them:
``POST|GET|DELETE /{stage}/@connections/{id}``, answering 410 ``GoneException`` for an unknown or closed one.

Every gateway process accepts WebSocket connections (the kernel spreads them over the processes), and a connection
lives in the process that accepted it. Its id names that process (the first of its 11 random bytes), so a
``@connections`` request that reached another process is passed on to the owner, once, over a loopback stream
between the two (``peers.py``)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from ..ledger import API_GATEWAY, CONNECTIONS_POST, Ledger
from .limits import MAX_MESSAGE_BYTES
from .peers import Answer, PeerGone, PeerLink, PeerServer


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
                 peers: dict[int, tuple[str, int]] | None = None):
        self._connections = connections
        self._ledger = ledger or Ledger(None)
        self._index = index  # this gateway process
        # Each other process's own port for requests passed on to it (see peers.py), by its index.
        self._links = {owner: PeerLink(host, port) for owner, (host, port) in (peers or {}).items()}

    def add_routes(self, app: web.Application, stage: str) -> None:
        """The API's routes. A request for another process's connection is passed on to it."""
        path = f"/{stage}/@connections/{{connection_id}}"
        for method in ("POST", "GET", "DELETE"):
            app.router.add_route(method, path, self._route)
        app.on_cleanup.append(self._close_links)

    async def serve_peers(self, host: str, port: int) -> PeerServer:
        """This process's own port, where the others pass on requests for its connections."""
        server = PeerServer(self.handle)
        await server.start(host, port)
        return server

    async def _route(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self._ledger.record(API_GATEWAY, CONNECTIONS_POST)  # once, where the caller's request arrived
        connection_id = request.match_info["connection_id"]
        body = await request.read()
        owner = owner_of(connection_id)
        link = self._links.get(owner) if owner is not None and owner != self._index else None
        if link is None:
            status, headers, payload = await self.handle(request.method, connection_id, body)
        else:
            try:
                status, headers, payload = await link.request(request.method, connection_id, body)
            except PeerGone:  # the owner died, and its connections with it (it is being started again)
                status, headers, payload = _gone(connection_id)
        return web.Response(status=status, headers=headers, body=payload)

    async def _close_links(self, app: web.Application) -> None:
        for link in self._links.values():
            await link.close()

    async def handle(self, method: str, connection_id: str, body: bytes) -> Answer:
        """One ``@connections`` request for a connection of this process (or one no process has)."""
        connection = self._connections.get(connection_id)
        if connection is None or connection.ws.closed:
            return _gone(connection_id)
        if method == "POST":
            return await self._post(connection, body)
        if method == "DELETE":
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")
            return 204, {}, b""
        return _json(200, self._describe(connection))

    @staticmethod
    async def _post(connection: Connection, data: bytes) -> Answer:
        if len(data) > MAX_MESSAGE_BYTES:
            return _json(413, {"message": "Message too long"}, {"x-amzn-ErrorType": "PayloadTooLargeException"})
        try:
            await connection.ws.send_str(data.decode("utf-8", "replace"))
        except ConnectionError:
            return _gone(connection.id)
        return 200, {}, b""

    @staticmethod
    def _describe(connection: Connection) -> dict:
        def iso(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

        return {
            "connectedAt": iso(connection.connected_at),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "lastActiveAt": iso(connection.last_active),
        }


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(body).encode()


def _gone(connection_id: str) -> Answer:
    return _json(410, {"message": f"Connection {connection_id} is gone"},
                 {"x-amzn-ErrorType": "GoneException", "x-amzn-RequestId": str(uuid.uuid4())})
