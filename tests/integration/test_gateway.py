"""The local API Gateway with the real app: WebSocket events, the @connections API and its 410."""

import asyncio
import json
import threading
import uuid
from datetime import UTC
from urllib.parse import quote

import aiohttp
import boto3
import pytest
from chalice.app import WebsocketAPI
from yarl import URL

from chalicelib.adapters.redis_store import RedisConnections
from chalicelib.adapters.websocket import ConnectionsApi, WebsocketPush
from chalicelib.auth import issue_token
from chalicelib.services.notifications import Notifier
from infra.local.aws import ensure_orders_queues
from infra.local.gateway import Gateway, serve
from infra.local.lambda_runtime import EnvironmentPool
from infra.local.processes import free_port
from tests.conftest import TEST_JWT_SECRET


@pytest.fixture(scope="module")
def gateway(aws_env, db, dex, sqs):
    import os

    ensure_orders_queues(sqs, "orders", worker_timeout_s=60)
    http_port, ws_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{ws_port}/api"
    os.environ["WEBSOCKET_ENDPOINT_URL"] = endpoint
    gw = Gateway(EnvironmentPool(max_size=4), EnvironmentPool(max_size=4))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(gw, http_port, ws_port, stop),), daemon=True)
    thread.start()
    from infra.local.processes import port_open, wait_until

    wait_until(lambda: port_open(ws_port), 10, "gateway")
    yield gw, http_port, ws_port, endpoint
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)
    os.environ.pop("WEBSOCKET_ENDPOINT_URL", None)


def management_client(endpoint):
    """boto3's own client: what any AWS SDK user would point at the local gateway."""
    return boto3.session.Session().client("apigatewaymanagementapi", endpoint_url=endpoint)


class EndpointOverrideSession(boto3.session.Session):
    """Chalice builds its management client with ``https://{domain}/{stage}``; this session points it here."""

    def __init__(self, endpoint_url: str):
        super().__init__()
        self._endpoint_url = endpoint_url

    def client(self, service_name, *args, **kwargs):
        if service_name == "apigatewaymanagementapi":
            kwargs["endpoint_url"] = self._endpoint_url
        return super().client(service_name, *args, **kwargs)


async def open_socket(session, gw, ws_port, user="alice"):
    """A connected client and the id the gateway gave its connection."""
    before = set(gw.connections)
    token = issue_token(user, TEST_JWT_SECRET)
    ws = await session.ws_connect(f"ws://127.0.0.1:{ws_port}/api?token={token}")
    (connection_id,) = set(gw.connections) - before
    return ws, connection_id


def test_connect_is_refused_without_a_valid_token(gateway):
    _, _, ws_port, _ = gateway

    async def attempt(query):
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(f"ws://127.0.0.1:{ws_port}/api{query}")
            return caught.value.status

    assert asyncio.run(attempt("")) == 401
    assert asyncio.run(attempt("?token=forged")) == 401


def test_connections_api_posts_reads_and_answers_410_once_closed(gateway):
    gw, _, ws_port, endpoint = gateway
    client = management_client(endpoint)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws, connection_id = await open_socket(session, gw, ws_port)
            await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=b'{"hello": 1}')
            frame = await ws.receive_json(timeout=5)
            info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
            await ws.close()
            await asyncio.sleep(0.2)
            return connection_id, frame, info

    connection_id, frame, info = asyncio.run(scenario())
    assert frame == {"hello": 1}
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="never-existed=", Data=b"x")


def test_a_post_to_a_closed_connection_drops_its_subscriptions(gateway, redis_client):
    gw, _, ws_port, endpoint = gateway
    connections = RedisConnections(redis_client)
    api = ConnectionsApi.for_api("local", "api", "us-east-1", endpoint)
    push = WebsocketPush(lambda: api)
    order_id = str(uuid.uuid4())

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws, connection_id = await open_socket(session, gw, ws_port)
            await ws.close()
            await asyncio.sleep(0.2)
            return connection_id

    connection_id = asyncio.run(scenario())
    connections.add_connection(connection_id, "alice")  # as if $disconnect had been lost
    with connections.delivery(order_id, joining=connection_id):
        pass

    class OneEvent:
        def events(self, order_id, after_seq=0):
            from datetime import datetime

            from chalicelib.domain.orders import OrderEvent, Status

            return [OrderEvent(order_id, 1, Status.PENDING, datetime.now(UTC), {})][after_seq:]

    Notifier(OneEvent(), connections, push).publish(order_id, [])
    assert connections.subscribers(order_id) == {}
    assert connections.user_of(connection_id) is None


def test_messages_over_128_kb_close_the_connection_with_1009(gateway):
    gw, _, ws_port, _ = gateway

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws, _ = await open_socket(session, gw, ws_port)
            await ws.send_str("x" * (128 * 1024 + 1))
            message = await ws.receive(timeout=5)
            return message.type, ws.close_code

    kind, code = asyncio.run(scenario())
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert code == 1009


def test_rest_routes_run_through_chalice_with_its_authorizer(gateway):
    _, http_port, _, _ = gateway

    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{http_port}/health") as r:
                health = (r.status, await r.json())
            async with session.post(f"http://127.0.0.1:{http_port}/orders", json={}) as r:
                unauthorised = r.status
            return health, unauthorised

    (status, body), unauthorised = asyncio.run(scenario())
    assert status == 200 and body["status"] == "ok", body
    assert unauthorised == 401


def test_a_path_with_control_characters_reaches_the_api_and_gets_a_problem(gateway):
    _, http_port, _, _ = gateway
    token = issue_token("alice", TEST_JWT_SECRET)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            url = URL(f"http://127.0.0.1:{http_port}/orders/%C2%B7%0A%1E%01i", encoded=True)  # found by schemathesis
            async with session.delete(url, headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status, r.headers["Content-Type"], await r.json(content_type=None)

    status, content_type, body = asyncio.run(scenario())
    assert status == 404 and content_type.startswith("application/problem+json") and body["status"] == 404


def test_the_engines_connections_client_posts_and_learns_when_a_connection_is_gone(gateway):
    gw, _, ws_port, endpoint = gateway
    api = ConnectionsApi.for_api("local", "api", "us-east-1", endpoint)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws, connection_id = await open_socket(session, gw, ws_port)
            posted = await asyncio.to_thread(api.post, connection_id, b'{"via": "engine"}')
            frame = await ws.receive_json(timeout=5)
            await ws.close()
            await asyncio.sleep(0.2)
            return posted, frame, await asyncio.to_thread(api.post, connection_id, b"late")

    assert asyncio.run(scenario()) == (True, {"via": "engine"}, False)


def test_chalices_own_send_path_reaches_the_local_gateway(gateway):
    """For Chalice apps that use ``app.websocket_api.send``: only the session differs from AWS."""
    gw, _, ws_port, endpoint = gateway
    api = WebsocketAPI()
    api.session = EndpointOverrideSession(endpoint)
    api.configure("127.0.0.1", "api")

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws, connection_id = await open_socket(session, gw, ws_port)
            await asyncio.to_thread(api.send, connection_id, json.dumps({"via": "chalice"}))
            frame = await ws.receive_json(timeout=5)
            await ws.close()
            return frame

    assert asyncio.run(scenario()) == {"via": "chalice"}


@pytest.fixture
def two_gateways(aws_env, db, dex, sqs):
    """Two gateway processes as the local cloud runs them (here two gateways in threads): both accept WebSocket
    connections on one shared port, each serves its own @connections port."""
    ensure_orders_queues(sqs, "orders", worker_timeout_s=60)
    http_port, ws_port = free_port(), free_port()
    management = [free_port(), free_port()]
    peers = {n: ("127.0.0.1", port) for n, port in enumerate(management)}
    gateways, stops, threads = [], [], []
    for index in (0, 1):
        gw = Gateway(EnvironmentPool(max_size=2), EnvironmentPool(max_size=2), index=index,
                     peers={n: url for n, url in peers.items() if n != index})
        loop, stop = asyncio.new_event_loop(), asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, daemon=True, args=(
            serve(gw, http_port, ws_port, stop, management_port=management[index]),))
        thread.start()
        gateways.append(gw)
        stops.append((loop, stop))
        threads.append(thread)
    from infra.local.processes import port_open, wait_until

    for port in management:
        wait_until(lambda port=port: port_open(port), 10, "gateway")
    yield gateways, ws_port
    for loop, stop in stops:
        loop.call_soon_threadsafe(stop.set)
    for thread in threads:
        thread.join(5)


def test_connections_spread_over_the_gateways_and_connections_reaches_each_through_either(two_gateways):
    from infra.local.gateway.connections import owner_of

    gateways, ws_port = two_gateways

    async def scenario():
        async with aiohttp.ClientSession() as session:
            sockets = []
            for n in range(16):  # the kernel spreads new connections over both listening processes
                token = issue_token(f"spread-{n}", TEST_JWT_SECRET)
                sockets.append(await session.ws_connect(f"ws://127.0.0.1:{ws_port}/api?token={token}"))
            await asyncio.sleep(0.2)
            owned = [set(gw.connections) for gw in gateways]
            # Every @connections request goes to whichever process the caller reached: here each one's public port
            # in turn, with every connection, so half of the requests are passed on to the connection's owner.
            answers = []
            for n, connection_id in enumerate(sorted(owned[0] | owned[1])):
                public = f"http://127.0.0.1:{ws_port}/api/@connections/{quote(connection_id, safe='')}"
                async with session.post(public, data=json.dumps({"n": n}).encode()) as answer:
                    answers.append(answer.status)
                async with session.get(public) as answer:
                    answers.append(answer.status)
            frames = [await ws.receive_json(timeout=5) for ws in sockets]
            async with session.post(f"http://127.0.0.1:{ws_port}/api/@connections/never-existed=",
                                    data=b"x") as gone:
                gone_status = gone.status
            for ws in sockets:
                await ws.close()
            return owned, answers, frames, gone_status

    owned, answers, frames, gone_status = asyncio.run(scenario())
    assert all(owned), "the kernel gave both processes connections"
    assert all(owner_of(c) == index for index, ids in enumerate(owned) for c in ids)  # each id names its owner
    assert set(answers) == {200} and len(frames) == 16 and {f["n"] for f in frames} == set(range(16))
    assert gone_status == 410


def test_a_websocket_process_and_a_rest_process_each_serve_their_own_api_and_meet_through_connections(
        aws_env, db, dex, sqs, monkeypatch):
    """The local cloud's two gateway processes: the REST API in one, the WebSocket API and @connections in the
    other. An order placed through the first is followed through the second, whose connection gets its push."""
    from chalicelib import bootstrap

    ensure_orders_queues(sqs, "orders", worker_timeout_s=60)
    http_port, ws_port = free_port(), free_port()
    monkeypatch.setenv("WEBSOCKET_ENDPOINT_URL", f"http://127.0.0.1:{ws_port}/api")
    # The functions' engine is the process's, built once: this test's gateways get one of their own, pushing here.
    monkeypatch.setattr(bootstrap, "_settings", bootstrap.FirstUse(bootstrap._read_settings))
    monkeypatch.setattr(bootstrap, "_engine", bootstrap.FirstUse(lambda: bootstrap.build_engine(bootstrap.settings())))
    websocket_only = Gateway(EnvironmentPool(max_size=2), EnvironmentPool(max_size=2))
    rest_only = Gateway(EnvironmentPool(max_size=2), EnvironmentPool(max_size=2))
    runs = []
    for gw, ports in ((websocket_only, (None, ws_port)), (rest_only, (http_port, None))):
        loop, stop = asyncio.new_event_loop(), asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(serve(gw, *ports, stop),), daemon=True)
        thread.start()
        runs.append((loop, stop, thread))
    from infra.local.processes import port_open, wait_until

    wait_until(lambda: port_open(http_port) and port_open(ws_port), 10, "gateway")
    token = issue_token("split-user", TEST_JWT_SECRET)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{http_port}/orders",
                                    headers={"Authorization": f"Bearer {token}"},
                                    json={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "0.01"}) as placed:
                order_id = (await placed.json())["orderId"]
            ws, _ = await open_socket(session, websocket_only, ws_port, user="split-user")
            await ws.send_json({"action": "subscribe", "orderId": order_id})
            frame = await ws.receive_json(timeout=5)
            await ws.close()
            return order_id, frame

    try:
        order_id, frame = asyncio.run(scenario())
    finally:
        for loop, stop, thread in runs:
            loop.call_soon_threadsafe(stop.set)
            thread.join(5)
        bootstrap.close_engine()
    assert frame["orderId"] == order_id and frame["status"] == "pending", frame
    assert not rest_only.connections  # every connection, and so every push, is the WebSocket process's


def test_a_connection_whose_gateway_process_is_gone_is_gone():
    """Its process died, and its connections with it: @connections answers 410, as for any closed connection."""
    from aiohttp import web

    from infra.local.gateway.connections import ConnectionsManagement, new_connection_id

    async def scenario():
        app = web.Application()
        ConnectionsManagement({}, index=0, peers={1: ("127.0.0.1", free_port())}).add_routes(app, "api")
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/api/@connections/{quote(new_connection_id(1), safe='')}"
                async with session.post(url, data=b"x") as answer:
                    return answer.status, answer.headers.get("x-amzn-ErrorType")
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == (410, "GoneException")
