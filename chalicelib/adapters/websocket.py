"""The API Gateway WebSocket Management API (``@connections``): one signed POST per frame.

A frame is posted for every status of every subscriber, so this is the engine's most frequent outbound call. boto3's
client (which Chalice's ``websocket_api.send`` wraps) spent about 1 ms of CPU per post on our 2-core machine, most
of it in botocore's event hooks and endpoint resolution; signing the same request with botocore's SigV4 signer and
sending it over a pooled urllib3 connection costs a third of that, with the same wire format and answers.

botocore and urllib3 are imported on first use: they are about 180 ms of a cold start, and an invocation that
pushes nothing (no one follows its order) never needs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

_RETRIED = {429, 500, 502, 503, 504}  # throttling and transient failures, as boto3's standard retry mode


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
        import urllib3

        self._endpoint = endpoint.rstrip("/")
        self._region = region
        self._credentials = credentials  # botocore credentials: refreshed by botocore when they expire
        self._http = urllib3.PoolManager(maxsize=pool_size, timeout=urllib3.Timeout(connect=2, read=5), retries=False)
        self._attempts = attempts
        self._sleep = sleep

    @classmethod
    def for_api(cls, api_id: str, stage: str, region: str, endpoint_url: str | None = None) -> ConnectionsApi:
        """The API's own endpoint on AWS; ``endpoint_url`` (``WEBSOCKET_ENDPOINT_URL``) for the local gateway."""
        import botocore.session

        endpoint = endpoint_url or f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"
        return cls(endpoint, region, botocore.session.get_session().get_credentials())

    def post(self, connection_id: str, data: bytes) -> bool:
        """Sends one frame; False when the connection is gone (410 ``GoneException``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = f"{self._endpoint}/@connections/{quote(connection_id, safe='')}"
        attempt = 1
        while True:
            request = AWSRequest("POST", url, data=data)
            SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
            response = self._http.request("POST", url, body=data, headers=dict(request.headers))
            if response.status < 300:
                return True
            if response.status == 410:
                return False
            if response.status not in _RETRIED:
                raise PushFailed(f"@connections answered {response.status}: {response.data[:200]!r}")
            if attempt == self._attempts:
                raise PushUnavailable(f"@connections answered {response.status} {attempt} times")
            self._sleep(0.05 * 2**attempt)
            attempt += 1


class WebsocketPush:
    def __init__(self, api: ConnectionsApi):
        self._api = api

    def send(self, connection_id: str, payload: dict[str, Any]) -> bool:
        """Post one frame; False when the connection is gone (API Gateway answered 410)."""
        return self._api.post(connection_id, json.dumps(payload, separators=(",", ":")).encode())
