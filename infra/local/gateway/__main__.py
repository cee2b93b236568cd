"""``python -m infra.local.gateway``: one gateway process of the local cloud, configured by the environment the
supervisor gives it, read once here and passed down."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from ..console import Console
from ..lambda_runtime import CodeVersion, EnvironmentPool
from ..ledger import Ledger
from ..processes import run_loop
from . import Gateway, serve

ROLES = ("", "rest", "websocket")  # both APIs, the REST API only, the WebSocket API and @connections only


@dataclass(frozen=True)
class GatewaySettings:
    http_port: int | None  # None: this process serves the WebSocket API and @connections only (GATEWAY_ROLE=websocket)
    ws_port: int | None  # None: this process serves the REST API only (GATEWAY_ROLE=rest)
    concurrency: int  # invocations at once of each API's functions
    idle_timeout_s: float
    max_connection_s: float
    bind_host: str
    log_level: str
    index: int = 0  # this process among the gateway processes (GATEWAY_INDEX)
    # Each gateway process's own loopback port, by index (GATEWAY_MANAGEMENT_PORTS, comma-separated): where a
    # @connections request for a connection of another process is passed on. Empty: the only process with
    # connections.
    management_ports: tuple[int, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        role = env.get("GATEWAY_ROLE", "")
        if role not in ROLES:
            raise ValueError(f"GATEWAY_ROLE must be rest, websocket or empty (both), not {role!r}")
        return cls(
            http_port=None if role == "websocket" else int(env.get("HTTP_PORT", "8000")),
            ws_port=None if role == "rest" else int(env.get("WS_PORT", "8001")),
            concurrency=int(env.get("GATEWAY_CONCURRENCY", "16")),
            idle_timeout_s=float(env.get("WS_IDLE_TIMEOUT_SECONDS", "600")),
            max_connection_s=float(env.get("WS_MAX_CONNECTION_SECONDS", "7200")),
            # Loopback only, but in a container (docker-compose.yml), whose published ports are bound to the
            # host's loopback.
            bind_host=env.get("LOCAL_BIND_HOST", "127.0.0.1"),
            log_level=env.get("LOG_LEVEL", "INFO"),
            index=int(env.get("GATEWAY_INDEX", "0")),
            management_ports=tuple(int(port) for port in env.get("GATEWAY_MANAGEMENT_PORTS", "").split(",") if port),
        )

    @property
    def peers(self) -> dict[int, tuple[str, int]]:
        return {index: ("127.0.0.1", port) for index, port in enumerate(self.management_ports) if index != self.index}

    @property
    def management_port(self) -> int | None:
        return self.management_ports[self.index] if self.index < len(self.management_ports) else None


def main(settings: GatewaySettings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s gateway %(levelname)s %(message)s")
    code, console, ledger = CodeVersion(), Console.from_env(), Ledger.from_env()
    gateway = Gateway(
        EnvironmentPool(max_size=settings.concurrency, code=code, console=console, ledger=ledger),
        EnvironmentPool(max_size=settings.concurrency, code=code, console=console, ledger=ledger),
        idle_timeout_s=settings.idle_timeout_s,
        max_connection_s=settings.max_connection_s,
        index=settings.index,
        peers=settings.peers,
    )
    if settings.ws_port is not None:
        gateway.websocket.warm_up()  # the first connection does not pay the import

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(gateway, settings.http_port, settings.ws_port, stop, host=settings.bind_host,
                    management_port=settings.management_port)

    run_loop(run())


if __name__ == "__main__":
    main(GatewaySettings.from_env(os.environ))
