"""The REST API and the WebSocket API invoke different functions, as on AWS: a backlog of REST requests never holds
up the WebSocket API's invocations (it used to: both shared one queue of invocations per gateway process)."""

import asyncio
import threading
from pathlib import Path

import aiohttp

from infra.local.gateway import Gateway, serve
from infra.local.lambda_runtime import EnvironmentPool
from infra.local.processes import free_port, port_open, wait_until
from tests.integration.apps import turnstile

APP = Path(__file__).parent / "apps" / "two_functions_app.py"


def test_a_rest_backlog_does_not_hold_up_websocket_messages(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # Chalice's WebSocket handlers configure a client with it
    gateway = Gateway(EnvironmentPool(APP, max_size=2), EnvironmentPool(APP, max_size=2))
    http_port, ws_port = free_port(), free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = threading.Thread(target=loop.run_until_complete, args=(serve(gateway, http_port, ws_port, stop),),
                              daemon=True)
    server.start()
    wait_until(lambda: port_open(ws_port), 10, "gateway")

    async def scenario():
        async with aiohttp.ClientSession() as session:
            # Six REST requests for two REST environments: two run and wait, four queue.
            waiting = [asyncio.create_task(session.get(f"http://127.0.0.1:{http_port}/wait")) for _ in range(6)]
            await asyncio.sleep(0.5)
            ws = await asyncio.wait_for(session.ws_connect(f"ws://127.0.0.1:{ws_port}/api"), 5)
            await ws.send_str("while REST waits")
            arrived = await asyncio.to_thread(turnstile.message_arrived.wait, 5)
            answered_meanwhile = sum(task.done() for task in waiting)
            turnstile.rest_may_answer.set()
            statuses = [(await task).status for task in waiting]
            await ws.close()
            return arrived, answered_meanwhile, statuses

    try:
        arrived, answered_meanwhile, statuses = asyncio.run(scenario())
    finally:
        turnstile.rest_may_answer.set()
        loop.call_soon_threadsafe(stop.set)
        server.join(5)
    assert arrived
    assert turnstile.messages == ["while REST waits"]  # and the close invoked no function: the app has no $disconnect
    assert answered_meanwhile == 0  # the REST requests were all still waiting when the message was handled
    assert statuses == [200] * 6
