"""A local API Gateway for the Chalice app, built from small parts, each tested alone:

- ``rest.py``: the REST API, through Chalice's own routing and authorizers, with API Gateway's own answers;
- ``websocket.py``: the WebSocket API (``$connect``, ``$default``, ``$disconnect`` with API Gateway's event shapes);
- ``connections.py``: the open connections and the ``@connections`` management API (410 ``GoneException``);
- ``limits.py``: API Gateway's WebSocket limits (frame and message sizes, idle timeout, maximum duration).

``Gateway`` puts them together over the app's two sets of function environments, and ``serve`` serves them.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ..lambda_runtime import EnvironmentPool
from .connections import Connection, ConnectionsManagement
from .limits import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, FrameSizeGuard
from .rest import RestApi
from .websocket import WebsocketApi

__all__ = ["MAX_FRAME_BYTES", "MAX_MESSAGE_BYTES", "Connection", "FrameSizeGuard", "Gateway", "serve"]


class Gateway:
    """``rest`` and ``websocket`` are the environments of the two APIs' functions. On AWS the REST handler and the
    WebSocket handlers are separate functions, each with its own concurrency: a backlog of REST requests never holds
    up a WebSocket message, nor the other way round."""

    def __init__(
        self,
        rest: EnvironmentPool,
        websocket: EnvironmentPool,
        api_id: str = "local",
        stage: str = "api",
        idle_timeout_s: float = 600,
        max_connection_s: float = 7200,
        index: int = 0,
        peers: dict[int, tuple[str, int]] | None = None,
    ):
        """``index`` is this gateway process among those of the local cloud, ``peers`` where each other one takes
        the ``@connections`` requests passed on to it (its management port), by index."""
        self.rest = rest
        self.websocket = websocket
        self.stage = stage
        self.connections: dict[str, Connection] = {}
        ws_handlers = rest.warm_up().app.websocket_handlers  # the same app: which functions the WebSocket routes call
        self.rest_api = RestApi(rest)
        self.websocket_api = WebsocketApi(websocket, {route: config.name for route, config in ws_handlers.items()},
                                          self.connections, api_id, stage, idle_timeout_s, max_connection_s,
                                          index=index)
        self.management = ConnectionsManagement(self.connections, websocket.ledger, index, peers)

    def rest_app(self) -> web.Application:
        return self.rest_api.app()

    def websocket_app(self) -> web.Application:
        """The WebSocket API and ``@connections``, which passes a request for another process's connection on."""
        app = self.websocket_api.app()
        self.management.add_routes(app, self.stage)
        return app


async def serve(gateway: Gateway, http_port: int | None, ws_port: int | None, stop: asyncio.Event,
                host: str = "127.0.0.1", management_port: int | None = None) -> None:
    """Serves the REST API on ``http_port`` and the WebSocket API and ``@connections`` on ``ws_port`` (either may
    be None: this process serves the other API only), and, on ``management_port`` (loopback only), the
    ``@connections`` requests other processes pass on to this one.

    The REST and WebSocket ports are shared (``SO_REUSEPORT``): the kernel spreads requests and connections over
    every gateway process serving the API, as API Gateway spreads them over Lambda environments. A connection lives
    in the process that accepted it; ``@connections`` passes requests on to it."""
    runners = []
    sites = [] if http_port is None else [(gateway.rest_app(), http_port)]
    if ws_port is not None:
        sites.append((gateway.websocket_app(), ws_port))
    for app, port in sites:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024, reuse_port=True).start()
        runners.append(runner)
    peers = None if management_port is None else await gateway.management.serve_peers("127.0.0.1", management_port)
    print(json.dumps({"gateway": "ready", "http": http_port, "ws": ws_port}), flush=True)
    await stop.wait()
    if peers is not None:
        await peers.close()
    for runner in runners:
        await runner.cleanup()
    for executor in (gateway.rest_api.executor, gateway.websocket_api.executor):
        executor.shutdown(wait=False, cancel_futures=True)
