"""``python -m infra.local.gateway``: one gateway process of the local cloud, configured by its environment."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..console import Console
from ..lambda_runtime import CodeVersion, EnvironmentPool
from ..processes import run_loop
from . import Gateway, serve


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
