"""The API Gateway WebSocket Management API (``@connections``), through Chalice's own client."""

from __future__ import annotations

import json
from typing import Any

import boto3
from chalice.app import WebsocketAPI, WebsocketDisconnectedError


class WebsocketPush:
    def __init__(self, websocket_api: WebsocketAPI):
        self._api = websocket_api

    def send(self, connection_id: str, payload: dict[str, Any]) -> bool:
        """Post one frame; False when the connection is gone (API Gateway answered 410)."""
        try:
            self._api.send(connection_id, json.dumps(payload, separators=(",", ":")))
        except WebsocketDisconnectedError:
            return False
        return True


class EndpointOverrideSession(boto3.session.Session):
    """A boto3 session that sends ``@connections`` calls to a fixed endpoint.

    Chalice builds its management client with ``https://{domain}/{stage}``, which ``AWS_ENDPOINT_URL`` cannot
    redirect; the local cloud sets ``WEBSOCKET_ENDPOINT_URL`` so the unchanged ``send`` path reaches it.
    """

    def __init__(self, endpoint_url: str, **kwargs: Any):
        super().__init__(**kwargs)
        self._endpoint_url = endpoint_url

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name == "apigatewaymanagementapi":
            kwargs["endpoint_url"] = self._endpoint_url
        return super().client(service_name, *args, **kwargs)
