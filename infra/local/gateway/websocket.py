"""The WebSocket API at ``/{stage}``: ``$connect``, ``$default`` and ``$disconnect`` invoked with API Gateway's event
shapes in the WebSocket functions' environments. A ``$connect`` that answers non-2xx (or fails) refuses the
upgrade; ``$default`` runs per message without waiting for the previous one; ``$disconnect`` is best effort."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..lambda_runtime import EnvironmentPool
from ..ledger import API_GATEWAY, WEBSOCKET_MESSAGE
from .connections import Connection, new_connection_id, now_ms
from .limits import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, FrameSizeGuard, closing_reason

log = logging.getLogger("gateway")
REAPER = web.AppKey("reaper", asyncio.Task)


def request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


class WebsocketApi:
    def __init__(
        self,
        pool: EnvironmentPool,
        functions: dict[str, str],  # route key -> the app's function for it
        connections: dict[str, Connection],  # shared with the @connections API
        api_id: str = "local",
        stage: str = "api",
        idle_timeout_s: float = 600,
        max_connection_s: float = 7200,
        clock: Callable[[], int] = now_ms,
        index: int = 0,  # this gateway process: the connections it accepts carry it in their ids
    ):
        self.pool = pool
        self.index = index
        self.functions = functions
        self.connections = connections
        self.executor = ThreadPoolExecutor(max_workers=pool.max_size, thread_name_prefix="websocket")
        self.api_id = api_id
        self.stage = stage
        self.idle_timeout_s = idle_timeout_s
        self.max_connection_s = max_connection_s
        self._clock = clock
        self._in_flight: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES + 1024)
        app.router.add_get(f"/{self.stage}", self.handle)
        app.router.add_get(f"/{self.stage}/", self.handle)
        app.on_startup.append(self._start_reaper)
        app.on_shutdown.append(self._close_all)
        return app

    def context(self, route_key: str, event_type: str, connection: Connection, request_ms: int) -> dict[str, Any]:
        """The event's ``requestContext``, as API Gateway builds it."""
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16] + "=",
            "requestTime": request_time(request_ms),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connection.connected_at,
            "requestTimeEpoch": request_ms,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": uuid.uuid4().hex[:16] + "=",
            "domainName": connection.headers.get("Host", "127.0.0.1"),
            "connectionId": connection.id,
            "apiId": self.api_id,
        }

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
        function = self.functions.get(route_key)
        if function is None:  # as on API Gateway: no $connect route accepts, no $disconnect route invokes nothing
            return None
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.pool.invoke, function, event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        connection = Connection(
            id=new_connection_id(self.index),
            ws=web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES + 1, autoping=True),  # aiohttp's bound is exclusive
            connected_at=now,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            headers=dict(request.headers),
            last_active=now,
        )
        query = {k: request.query.getone(k) for k in request.query.keys()}
        multi_query = {k: request.query.getall(k) for k in request.query.keys()}
        connect_event: dict[str, Any] = {
            "headers": connection.headers,
            "multiValueHeaders": {k: request.headers.getall(k) for k in request.headers.keys()},
            "requestContext": self.context("$connect", "CONNECT", connection, now),
            "isBase64Encoded": False,
        }
        if query:
            connect_event["queryStringParameters"] = query
            connect_event["multiValueQueryStringParameters"] = multi_query
        try:
            result = await self._invoke("$connect", connect_event) or {"statusCode": 200}
        except Exception:
            log.exception("$connect failed")
            return web.json_response({"message": "Internal server error"}, status=500)
        status = int(result.get("statusCode", 200))
        if not 200 <= status < 300:
            return web.Response(status=status, body=result.get("body") or "", headers=result.get("headers") or {})

        # Registered before the handshake completes: a client may use the connection as soon as it is open.
        self.connections[connection.id] = connection
        await connection.ws.prepare(request)
        FrameSizeGuard.install(connection.ws, request, MAX_FRAME_BYTES)
        disconnect_status, reason = 1005, "Client-side close frame status not set"
        try:
            async for message in connection.ws:
                connection.last_active = self._clock()
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    body = message.data if message.type == WSMsgType.TEXT else message.data.decode("utf-8", "replace")
                    # API Gateway invokes $default per message without waiting for the previous one.
                    task = asyncio.create_task(self._on_message(connection, body))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                elif message.type == WSMsgType.ERROR:
                    break
            if connection.ws.close_code is not None:
                disconnect_status, reason = connection.ws.close_code, "Client-side close frame"
        finally:
            self.connections.pop(connection.id, None)
            if not connection.ws.closed:
                await connection.ws.close()
            event = {
                "headers": connection.headers,
                "requestContext": {
                    **self.context("$disconnect", "DISCONNECT", connection, self._clock()),
                    "disconnectStatusCode": connection.ws.close_code or disconnect_status,
                    "disconnectReason": reason,
                },
                "isBase64Encoded": False,
            }
            try:
                await self._invoke("$disconnect", event)
            except Exception:  # best effort, as on API Gateway
                log.exception("$disconnect failed")
        return connection.ws

    async def _on_message(self, connection: Connection, body: str) -> None:
        event = {
            "requestContext": {
                **self.context("$default", "MESSAGE", connection, self._clock()),
                "messageId": uuid.uuid4().hex[:16] + "=",
            },
            "body": body,
            "isBase64Encoded": False,
        }
        self.pool.ledger.record(API_GATEWAY, WEBSOCKET_MESSAGE)
        try:
            await self._invoke("$default", event)
        except Exception:
            log.exception("$default failed")

    async def _start_reaper(self, app: web.Application) -> None:
        app[REAPER] = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout_s / 4))
            now = self._clock()
            for connection in list(self.connections.values()):
                if closing_reason(connection.connected_at, connection.last_active, now, self.idle_timeout_s,
                                  self.max_connection_s):
                    await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")

    async def _close_all(self, app: web.Application) -> None:
        app[REAPER].cancel()
        for connection in list(self.connections.values()):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")
