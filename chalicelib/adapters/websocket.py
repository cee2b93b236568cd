"""The API Gateway WebSocket Management API (``@connections``): one signed POST per frame (see ``signed_http``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .signed_http import RETRIED, SignedHttp


class PushFailed(Exception):
    """``@connections`` refused a frame for a reason other than the connection being gone."""


class PushUnavailable(PushFailed):
    """``@connections`` kept answering with throttling or a server error: try again later."""


class ConnectionsApi:
    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Any,
        pool_size: int = 64,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._endpoint = endpoint.rstrip("/")
        self._http = SignedHttp("execute-api", region, credentials, pool_size, attempts=attempts, sleep=sleep)

    @classmethod
    def for_api(cls, api_id: str, stage: str, region: str, endpoint_url: str | None = None) -> ConnectionsApi:
        """The API's own endpoint on AWS; ``endpoint_url`` (``WEBSOCKET_ENDPOINT_URL``) for the local gateway."""
        import botocore.session

        endpoint = endpoint_url or f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"
        return cls(endpoint, region, botocore.session.get_session().get_credentials())

    def post(self, connection_id: str, data: bytes) -> bool:
        """Sends one frame; False when the connection is gone (410 ``GoneException``)."""
        response = self._http.post(f"{self._endpoint}/@connections/{quote(connection_id, safe='')}", data)
        if response.status < 300:
            return True
        if response.status == 410:
            return False
        if response.status in RETRIED:
            raise PushUnavailable(f"@connections answered {response.status} {self._http.attempts} times")
        raise PushFailed(f"@connections answered {response.status}: {response.data[:200]!r}")


class WebsocketPush:
    """``api`` gives the ``@connections`` client when the first frame is sent."""

    def __init__(self, api: Callable[[], ConnectionsApi]):
        self._api = api

    def send(self, connection_id: str, payload: dict[str, Any]) -> bool:
        """Post one frame; False when the connection is gone (API Gateway answered 410)."""
        return self._api().post(connection_id, json.dumps(payload, separators=(",", ":")).encode())
