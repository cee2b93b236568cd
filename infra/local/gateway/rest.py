"""The REST API: each request through Chalice's own routing and authorizers (``LocalGateway``) in one of the REST
function's environments, and API Gateway's own answers (gateway responses) where it would answer itself."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from chalice.local import LocalGatewayException

from ...gateway_responses import problem
from ..lambda_runtime import EnvironmentPool
from ..ledger import API_GATEWAY, LAMBDA, REST_REQUEST

log = logging.getLogger("gateway")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit

Answer = tuple[int, dict[str, str], bytes]


class RestApi:
    """As many invocation threads as the function has environments: a backlog of REST requests never holds up the
    WebSocket API's functions, which are other functions on AWS."""

    def __init__(self, pool: EnvironmentPool):
        self.pool = pool
        self.executor = ThreadPoolExecutor(max_workers=pool.max_size, thread_name_prefix="rest")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
        # Every path, control characters included (``.`` stops at a newline, and aiohttp would answer 404 itself
        # in plain text): API Gateway hands such a path to the API, which answers in problem details.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            status, headers, payload = problem("REQUEST_TOO_LARGE")
            return web.Response(status=status, headers=headers, body=payload)
        headers = {k: v for k, v in request.headers.items()}
        loop = asyncio.get_running_loop()
        status, response_headers, payload = await loop.run_in_executor(
            self.executor, self.invoke, request.method, request.path_qs, headers, body or None
        )
        return web.Response(status=status, headers=response_headers, body=payload)

    def invoke(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Answer:
        """One request, in a free environment; reported on the ``make run`` terminal."""
        request_id = str(uuid.uuid4())
        started = invoked = time.perf_counter()
        cold = False
        try:
            with self.pool.environment() as env:
                cold, invoked = env.invocations == 0, time.perf_counter()
                try:
                    response = env.gateway.handle_request(method, path, headers, body)
                finally:  # billed from when an environment took it, not while it waited for one
                    self.pool.ledger.record(LAMBDA, "api_handler", (time.perf_counter() - invoked) * 1000)
            result = proxy_answer(response, request_id)
        except LocalGatewayException as error:
            result = gateway_answer(response_type(error), request_id, error.headers.get("x-amzn-ErrorType"))
        except Exception as error:
            if str(error) == "Unauthorized":  # a Lambda authorizer's way of answering 401
                result = gateway_answer("UNAUTHORIZED", request_id, "UnauthorizedException")
            else:
                log.exception("invocation failed")
                result = gateway_answer("DEFAULT_5XX", request_id, "InternalServerErrorException")
        ms = (time.perf_counter() - started) * 1000
        self.pool.ledger.record(API_GATEWAY, REST_REQUEST)
        if self.pool.console.enabled:
            self.pool.console.line(f"{method} {path} {result[0]} {ms:.1f} ms{' (λ api_handler cold)' if cold else ''}")
        return result


def proxy_answer(response: dict[str, Any], request_id: str) -> Answer:
    """API Gateway's answer from the function's proxy response."""
    out_headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        out_headers[name] = ", ".join(values)
    out_headers["x-amzn-RequestId"] = request_id
    payload = response.get("body") or ""
    data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
    return response["statusCode"], out_headers, data


def gateway_answer(response_type: str, request_id: str, error_type: str | None) -> Answer:
    """One of API Gateway's own answers (a gateway response), as the deployed API defines it."""
    status, headers, body = problem(response_type)
    headers = {**headers, "x-amzn-RequestId": request_id}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return status, headers, body


def response_type(error: LocalGatewayException) -> str:
    """Which of API Gateway's gateway responses Chalice's local refusal stands for."""
    if error.CODE == 401:
        return "UNAUTHORIZED"
    if error.CODE == 403 and error.headers.get("x-amzn-ErrorType") == "AccessDeniedException":
        return "ACCESS_DENIED"
    if error.CODE == 403:
        return "MISSING_AUTHENTICATION_TOKEN"  # no such route
    return "DEFAULT_5XX"
