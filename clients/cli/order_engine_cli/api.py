"""The engine's public API as the CLI uses it: HTTP requests and a WebSocket, nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiError(Exception):
    """The API refused the request (its problem's status and detail), or could not be reached (status 0)."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []

    def __str__(self) -> str:
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        prefix = f"error {self.status}" if self.status else "error"
        return f"{prefix}: {self.detail}" + (f" ({fields})" if fields and fields not in self.detail else "")


@dataclass(frozen=True)
class Endpoint:
    url: str  # the REST API, e.g. http://127.0.0.1:8000
    ws_url: str  # the WebSocket API, e.g. ws://127.0.0.1:8001/api
    token: str | None


class Client:
    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession):
        self._endpoint = endpoint
        self._session = session

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                   auth: bool = True) -> Any:
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {self._require_token()}"
        try:
            async with self._session.request(method, self._endpoint.url.rstrip("/") + path, json=body,
                                             params=params, headers=headers) as response:
                text = await response.text()
        except aiohttp.ClientError as error:
            raise ApiError(0, f"cannot reach {self._endpoint.url} ({type(error).__name__}): is the engine running "
                              "(make run)?") from None
        answer = json.loads(text) if text else None
        if response.status >= 400:
            problem = answer if isinstance(answer, dict) else {}
            raise ApiError(response.status, problem.get("detail") or text or response.reason or "",
                           problem.get("errors"))
        return answer

    def _require_token(self) -> str:
        if not self._endpoint.token:
            raise ApiError(0, "no token: pass --token or set ORDER_ENGINE_TOKEN (locally: "
                              "export ORDER_ENGINE_TOKEN=$(order-engine token alice))")
        return self._endpoint.token

    async def stream(self, *messages: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Opens the WebSocket, sends these messages, and yields every frame until the caller stops."""
        url = f"{self._endpoint.ws_url}?token={self._require_token()}"
        try:
            ws = await self._session.ws_connect(url, heartbeat=30)
        except (aiohttp.ClientError, aiohttp.WSServerHandshakeError) as error:
            raise ApiError(getattr(error, "status", 0), f"cannot open the WebSocket at {self._endpoint.ws_url} "
                                                        f"({type(error).__name__})") from None
        async with ws:
            for message in messages:
                await ws.send_json(message)
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    break
                yield json.loads(frame.data)
