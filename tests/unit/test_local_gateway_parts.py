"""The local API Gateway's parts, each alone: its limits, the @connections API, the REST API's answers and the
WebSocket API's event context."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from chalice.local import ForbiddenError, NotAuthorizedError

from infra.local.gateway.connections import Connection, ConnectionsManagement
from infra.local.gateway.limits import MAX_MESSAGE_BYTES, FrameSizeGuard, closing_reason
from infra.local.gateway.rest import gateway_answer, proxy_answer, response_type
from infra.local.gateway.websocket import WebsocketApi
from infra.local.lambda_runtime import EnvironmentPool


def test_a_connection_closes_when_idle_or_too_old_and_not_before():
    minute = 60_000
    assert closing_reason(0, 9 * minute, 10 * minute, idle_timeout_s=600, max_connection_s=7200) is None
    assert closing_reason(0, 0, 10 * minute, idle_timeout_s=600, max_connection_s=7200) == "idle"
    assert closing_reason(0, 119 * minute, 120 * minute, idle_timeout_s=600, max_connection_s=7200) == "too old"


class Parser:
    def __init__(self) -> None:
        self.fed = bytearray()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.fed += data
        return False, b""

    def feed_eof(self) -> None:
        pass


class Queue:
    def __init__(self) -> None:
        self.error: BaseException | None = None

    def set_exception(self, error: BaseException) -> None:
        self.error = error

    def exception(self) -> BaseException | None:
        return self.error


def frame(payload_length: int, opcode: int = 0x1) -> bytes:
    """A client's masked frame header for a payload of that length, and the payload."""
    if payload_length < 126:
        header = bytes([0x80 | opcode, 0x80 | payload_length])
    elif payload_length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + payload_length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + payload_length.to_bytes(8, "big")
    return header + b"MASK" + b"x" * payload_length


def test_frames_up_to_the_limit_pass_to_aiohttps_parser_and_a_larger_one_is_refused_with_1009():
    parser, queue = Parser(), Queue()
    guard = FrameSizeGuard(parser, queue, max_frame_bytes=32 * 1024)
    small, limit = frame(100), frame(32 * 1024)
    for chunk in (small[:3], small[3:], limit):  # headers split across reads are read whole
        guard.feed_data(chunk)
    assert queue.error is None and bytes(parser.fed) == small + limit
    guard.feed_data(frame(32 * 1024 + 1))
    assert queue.error is not None and queue.error.args[0] == 1009
    assert guard.feed_data(frame(10)) == (False, b"")  # what follows is read and dropped
    assert bytes(parser.fed) == small + limit
    control = FrameSizeGuard(Parser(), Queue(), max_frame_bytes=10)
    control.feed_data(frame(100, opcode=0x9))  # a ping is not a data frame
    assert control._queue.exception() is None


class Socket:
    """A WebSocket connection's server side, as the @connections API uses it."""

    def __init__(self) -> None:
        self.closed = False
        self.sent: list[str] = []
        self.close_code: int | None = None

    async def send_str(self, data: str) -> None:
        self.sent.append(data)

    async def close(self, code: int, message: bytes) -> None:
        self.closed, self.close_code = True, code


def test_the_connections_api_posts_reads_and_deletes_and_answers_410_for_a_gone_one():
    socket = Socket()
    connections = {"abc=": Connection("abc=", socket, 1_000, "127.0.0.1", "bot/1", {})}  # type: ignore[arg-type]

    async def scenario() -> list:
        app = web.Application()
        ConnectionsManagement(connections).add_routes(app, "api")
        async with TestClient(TestServer(app)) as client:
            answers = []
            for method, path, body in [("POST", "/api/@connections/abc%3D", b'{"type":"order.update"}'),
                                       ("GET", "/api/@connections/abc=", None),
                                       ("POST", "/api/@connections/abc=", b"x" * (MAX_MESSAGE_BYTES + 1)),
                                       ("POST", "/api/@connections/nobody=", b"{}"),
                                       ("DELETE", "/api/@connections/abc=", None),
                                       ("POST", "/api/@connections/abc=", b"{}")]:
                response = await client.request(method, path, data=body)
                answers.append((response.status, response.headers.get("x-amzn-ErrorType"),
                                await response.json() if response.content_type == "application/json" else None))
            return answers

    answers = asyncio.run(scenario())
    assert [(status, error) for status, error, _ in answers] == [
        (200, None), (200, None), (413, "PayloadTooLargeException"), (410, "GoneException"), (204, None),
        (410, "GoneException")]
    assert answers[1][2]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "bot/1"}
    assert socket.sent == ['{"type":"order.update"}'] and socket.close_code == 1001


def test_the_rest_api_answers_as_the_function_did_or_as_api_gateway_itself_would():
    status, headers, body = proxy_answer({"statusCode": 202, "headers": {"Location": "/orders/o-1"},
                                          "multiValueHeaders": {"Vary": ["Origin", "Accept"]},
                                          "body": '{"orderId":"o-1"}'}, "req-1")
    assert (status, body) == (202, b'{"orderId":"o-1"}')
    assert headers == {"Location": "/orders/o-1", "Vary": "Origin, Accept", "x-amzn-RequestId": "req-1"}
    assert response_type(NotAuthorizedError({})) == "UNAUTHORIZED"
    assert response_type(ForbiddenError({})) == "MISSING_AUTHENTICATION_TOKEN"  # no such route
    assert response_type(ForbiddenError({"x-amzn-ErrorType": "AccessDeniedException"})) == "ACCESS_DENIED"
    status, headers, _ = gateway_answer("UNAUTHORIZED", "req-2", "UnauthorizedException")
    assert status == 401 and headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert headers["x-amzn-RequestId"] == "req-2"


def test_the_websocket_api_builds_api_gateways_request_context_from_its_clock():
    api = WebsocketApi(EnvironmentPool(max_size=1), {"$connect": "ws_connect"}, {}, api_id="local", stage="api",
                       clock=lambda: 1_767_268_800_000)
    connection = Connection("abc=", SimpleNamespace(), 1_767_268_799_000, "10.0.0.1", "bot/1",  # type: ignore[arg-type]
                            {"Host": "127.0.0.1:8001"})
    context = api.context("$connect", "CONNECT", connection, 1_767_268_800_000)
    assert context["routeKey"] == "$connect" and context["eventType"] == "CONNECT"
    assert context["connectionId"] == "abc=" and context["connectedAt"] == 1_767_268_799_000
    assert context["requestTime"] == "01/Jan/2026:12:00:00 +0000" and context["requestTimeEpoch"] == 1_767_268_800_000
    assert context["domainName"] == "127.0.0.1:8001" and context["apiId"] == "local" and context["stage"] == "api"
    assert context["identity"] == {"sourceIp": "10.0.0.1", "userAgent": "bot/1"}
