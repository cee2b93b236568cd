"""A local API Gateway for the Chalice app.

- REST on ``HTTP_PORT`` through Chalice's own routing and authorizers (``LocalGateway``).
- A WebSocket API on ``WS_PORT`` at ``/{stage}`` that invokes ``$connect``, ``$default`` and ``$disconnect`` with
  API Gateway's event shapes; a ``$connect`` that answers non-2xx (or fails) refuses the upgrade.
- The ``@connections`` management API at ``/{stage}/@connections/{id}``: POST, GET, DELETE, and 410
  ``GoneException`` for an unknown or closed connection.
- API Gateway's WebSocket limits: 32 KB frames and 128 KB messages (larger ones close with 1009), the idle timeout
  and the maximum connection duration.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from chalice.local import LocalGatewayException

from ..gateway_responses import problem
from .console import Console
from .lambda_runtime import CodeVersion, EnvironmentPool
from .processes import run_loop

log = logging.getLogger("gateway")

MAX_MESSAGE_BYTES = 128 * 1024
MAX_FRAME_BYTES = 32 * 1024
REAPER = web.AppKey("reaper", asyncio.Task)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _new_connection_id() -> str:
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
    last_active: int = field(default_factory=_now_ms)


class Gateway:
    """``rest`` and ``websocket`` are the environments of the two APIs' functions. On AWS the REST handler and the
    WebSocket handlers are separate functions, each with its own concurrency: a backlog of REST requests never holds
    up a WebSocket message, nor the other way round. Each API has as many invocation threads as environments."""

    def __init__(
        self,
        rest: EnvironmentPool,
        websocket: EnvironmentPool,
        api_id: str = "local",
        stage: str = "api",
        idle_timeout_s: float = 600,
        max_connection_s: float = 7200,
    ):
        self.rest = rest
        self.websocket = websocket
        self.rest_executor = ThreadPoolExecutor(max_workers=rest.max_size, thread_name_prefix="rest")
        self.websocket_executor = ThreadPoolExecutor(max_workers=websocket.max_size, thread_name_prefix="websocket")
        self.api_id = api_id
        self.stage = stage
        self.idle_timeout_s = idle_timeout_s
        self.max_connection_s = max_connection_s
        self.connections: dict[str, Connection] = {}
        self._in_flight: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        ws_handlers = rest.warm_up().app.websocket_handlers  # the same app: which functions the WebSocket routes call
        self.ws_functions = {route: config.name for route, config in ws_handlers.items()}

    # REST -------------------------------------------------------------------------------------------------

    def rest_app(self) -> web.Application:
        app = web.Application(client_max_size=10 * 1024 * 1024)  # API Gateway's REST payload limit
        app.router.add_route("*", "/{tail:.*}", self.handle_rest)
        return app

    async def handle_rest(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            status, headers, payload = problem("REQUEST_TOO_LARGE")
            return web.Response(status=status, headers=headers, body=payload)
        headers = {k: v for k, v in request.headers.items()}
        loop = asyncio.get_running_loop()
        status, response_headers, payload = await loop.run_in_executor(
            self.rest_executor, self._invoke_rest, request.method, request.path_qs, headers, body or None
        )
        return web.Response(status=status, headers=response_headers, body=payload)

    def _invoke_rest(self, method: str, path: str, headers: dict[str, str], body: bytes | None):
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        cold = False
        try:
            with self.rest.environment() as env:
                cold = env.invocations == 0
                response = env.gateway.handle_request(method, path, headers, body)
            result = self._proxy_response(response, request_id)
        except LocalGatewayException as error:
            result = self._gateway_response(_response_type(error), request_id, error.headers.get("x-amzn-ErrorType"))
        except Exception as error:
            if str(error) == "Unauthorized":  # a Lambda authorizer's way of answering 401
                result = self._gateway_response("UNAUTHORIZED", request_id, "UnauthorizedException")
            else:
                log.exception("invocation failed")
                result = self._gateway_response("DEFAULT_5XX", request_id, "InternalServerErrorException")
        if self.rest.console.enabled:
            ms = (time.perf_counter() - started) * 1000
            self.rest.console.line(f"{method} {path} {result[0]} {ms:.1f} ms{' (λ api_handler cold)' if cold else ''}")
        return result

    @staticmethod
    def _proxy_response(response: dict[str, Any], request_id: str) -> tuple[int, dict[str, str], bytes]:
        """API Gateway's answer from the function's proxy response."""
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        out_headers["x-amzn-RequestId"] = request_id
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        return response["statusCode"], out_headers, data

    @staticmethod
    def _gateway_response(response_type: str, request_id: str, error_type: str | None):
        status, headers, body = problem(response_type)
        headers = {**headers, "x-amzn-RequestId": request_id}
        if error_type:
            headers["x-amzn-ErrorType"] = error_type
        return status, headers, body

    # WebSocket --------------------------------------------------------------------------------------------

    def websocket_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES + 1024)
        app.router.add_get(f"/{self.stage}", self.handle_websocket)
        app.router.add_get(f"/{self.stage}/", self.handle_websocket)
        path = f"/{self.stage}/@connections/{{connection_id}}"
        app.router.add_post(path, self.post_to_connection)
        app.router.add_get(path, self.get_connection)
        app.router.add_delete(path, self.delete_connection)
        app.on_startup.append(self._start_reaper)
        app.on_shutdown.append(self._close_all)
        return app

    def _context(self, route_key: str, event_type: str, connection: Connection, request_ms: int) -> dict[str, Any]:
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16] + "=",
            "requestTime": _request_time(request_ms),
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
        function = self.ws_functions.get(route_key)
        if function is None:  # as on API Gateway: no $connect route accepts, no $disconnect route invokes nothing
            return None

        return await asyncio.get_running_loop().run_in_executor(self.websocket_executor, self.websocket.invoke,
                                                                function, event)

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        now = _now_ms()
        connection = Connection(
            id=_new_connection_id(),
            ws=web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES + 1, autoping=True),  # aiohttp's bound is exclusive
            connected_at=now,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            headers=dict(request.headers),
        )
        query = {k: request.query.getone(k) for k in request.query.keys()}
        multi_query = {k: request.query.getall(k) for k in request.query.keys()}
        connect_event = {
            "headers": connection.headers,
            "multiValueHeaders": {k: request.headers.getall(k) for k in request.headers.keys()},
            "requestContext": self._context("$connect", "CONNECT", connection, now),
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
                connection.last_active = _now_ms()
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
                    **self._context("$disconnect", "DISCONNECT", connection, _now_ms()),
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
                **self._context("$default", "MESSAGE", connection, _now_ms()),
                "messageId": uuid.uuid4().hex[:16] + "=",
            },
            "body": body,
            "isBase64Encoded": False,
        }
        try:
            await self._invoke("$default", event)
        except Exception:
            log.exception("$default failed")

    # @connections -----------------------------------------------------------------------------------------

    def _live(self, request: web.Request) -> Connection | None:
        connection = self.connections.get(request.match_info["connection_id"])
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
        iso = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()  # noqa: E731
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

    # Limits -----------------------------------------------------------------------------------------------

    async def _start_reaper(self, app: web.Application) -> None:
        app[REAPER] = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout_s / 4))
            now = _now_ms()
            for connection in list(self.connections.values()):
                idle = (now - connection.last_active) / 1000 >= self.idle_timeout_s
                too_old = (now - connection.connected_at) / 1000 >= self.max_connection_s
                if idle or too_old:
                    await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")

    async def _close_all(self, app: web.Application) -> None:
        app[REAPER].cancel()
        for connection in list(self.connections.values()):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")


class FrameSizeGuard:
    """Refuses data frames over API Gateway's frame limit (aiohttp only bounds whole messages): reads each frame's
    header from the raw bytes ahead of aiohttp's own parser and closes the connection with 1009 on a larger one."""

    def __init__(self, parser: Any, queue: Any, max_frame_bytes: int):
        self._parser = parser
        self._queue = queue
        self._max = max_frame_bytes
        self._header = bytearray()
        self._payload_left = 0
        self._refused = False

    @classmethod
    def install(cls, ws: web.WebSocketResponse, request: web.Request, max_frame_bytes: int) -> None:
        # aiohttp (pinned; a test covers this) keeps its frame parser and message queue on the response and the
        # protocol; no frame has been read yet when prepare() returns.
        request.protocol._payload_parser = cls(ws._parser, ws._reader, max_frame_bytes)

    def feed_eof(self) -> Any:
        return self._parser.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        # Once a frame or message is refused, what the client still sends is read and dropped instead of closing
        # the socket at once: closing with unread data resets the connection before the client reads the 1009.
        if self._refused:
            return False, b""
        if self._oversized(data):
            self._refused = True
            self._queue.set_exception(
                WebSocketError(WSCloseCode.MESSAGE_TOO_BIG, f"frame over the {self._max}-byte limit"))
            return False, b""
        eof, tail = self._parser.feed_data(data)
        if eof and self._queue.exception() is not None:  # aiohttp refused the message (over 128 KB)
            self._refused = True
            return False, b""
        return eof, tail

    def _oversized(self, data: bytes) -> bool:
        position = 0
        while position < len(data):
            if self._payload_left:
                step = min(self._payload_left, len(data) - position)
                self._payload_left -= step
                position += step
                continue
            self._header.append(data[position])
            position += 1
            length = self._frame_length()
            if length is None:
                continue  # the header is not complete yet
            opcode = self._header[0] & 0x0F
            self._header.clear()
            if opcode in (0x0, 0x1, 0x2) and length > self._max:  # continuation, text, binary
                return True
            self._payload_left = length
        return False

    def _frame_length(self) -> int | None:
        header = self._header
        if len(header) < 2:
            return None
        short = header[1] & 0x7F
        extended = {126: 2, 127: 8}.get(short, 0)
        mask = 4 if header[1] & 0x80 else 0
        if len(header) < 2 + extended + mask:
            return None
        return int.from_bytes(header[2:2 + extended], "big") if extended else short


def _response_type(error: LocalGatewayException) -> str:
    """Which of API Gateway's gateway responses Chalice's local refusal stands for."""
    if error.CODE == 401:
        return "UNAUTHORIZED"
    if error.CODE == 403 and error.headers.get("x-amzn-ErrorType") == "AccessDeniedException":
        return "ACCESS_DENIED"
    if error.CODE == 403:
        return "MISSING_AUTHENTICATION_TOKEN"  # no such route
    return "DEFAULT_5XX"


async def serve(gateway: Gateway, http_port: int, ws_port: int | None, stop: asyncio.Event) -> None:
    """Serves the REST API on ``http_port`` and, unless ``ws_port`` is None, the WebSocket API and ``@connections``.

    The REST port is shared (``SO_REUSEPORT``): the kernel spreads requests over every gateway process, as API
    Gateway spreads them over Lambda environments, so REST invocations use every core. A WebSocket connection lives
    in the one process that accepted it, and ``@connections`` must reach that process: one process serves both."""
    # Loopback only, but in a container (docker-compose.yml), whose published ports are bound to the host's loopback.
    host = os.environ.get("LOCAL_BIND_HOST", "127.0.0.1")
    runners = []
    sites = [(gateway.rest_app(), http_port, True)]
    if ws_port is not None:
        sites.append((gateway.websocket_app(), ws_port, False))
    for app, port, shared in sites:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024, reuse_port=shared).start()
        runners.append(runner)
    print(json.dumps({"gateway": "ready", "http": http_port, "ws": ws_port}), flush=True)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
    for executor in (gateway.rest_executor, gateway.websocket_executor):
        executor.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s gateway %(levelname)s %(message)s")
    concurrency = int(os.environ.get("GATEWAY_CONCURRENCY", "16"))
    rest_only = os.environ.get("GATEWAY_ROLE") == "rest"
    code, console = CodeVersion(), Console.from_env()
    gateway = Gateway(
        EnvironmentPool(max_size=concurrency, code=code, console=console),
        EnvironmentPool(max_size=concurrency, code=code, console=console),
        idle_timeout_s=float(os.environ.get("WS_IDLE_TIMEOUT_SECONDS", "600")),
        max_connection_s=float(os.environ.get("WS_MAX_CONNECTION_SECONDS", "7200")),
    )
    if not rest_only:
        gateway.websocket.warm_up()  # the first connection does not pay the import

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(gateway, int(os.environ.get("HTTP_PORT", "8000")),
                    None if rest_only else int(os.environ.get("WS_PORT", "8001")), stop)

    run_loop(run())


if __name__ == "__main__":
    main()
