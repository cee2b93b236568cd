"""The stream between gateway processes that carries @connections requests to a connection's owner (peers.py)."""

from __future__ import annotations

import asyncio

import pytest

from infra.local.gateway.peers import PeerGone, PeerLink, PeerServer


async def owner(handle, port: int = 0) -> tuple[PeerServer, int]:
    server = PeerServer(handle)
    await server.start("127.0.0.1", port)
    return server, server.port


def test_a_request_and_its_answer_cross_whole():
    seen = []

    async def handle(method, connection_id, body):
        seen.append((method, connection_id, body))
        return 410, {"x-amzn-ErrorType": "GoneException"}, b'{"message": "gone"}'

    async def scenario():
        server, port = await owner(handle)
        link = PeerLink("127.0.0.1", port)
        body = bytes(range(256)) * 512 + b"\n\n{}"  # newlines and every byte: the body is counted, not scanned
        try:
            return await link.request("POST", "AQID-_==", body), body
        finally:
            await link.close()
            await server.close()

    answer, body = asyncio.run(scenario())
    assert answer == (410, {"x-amzn-ErrorType": "GoneException"}, b'{"message": "gone"}')
    assert seen == [("POST", "AQID-_==", body)]


def test_requests_are_pipelined_and_a_slow_one_holds_up_only_itself():
    async def scenario():
        slow_may_answer = asyncio.Event()

        async def handle(method, connection_id, body):
            if connection_id == "slow":
                await slow_may_answer.wait()
            return 200, {}, connection_id.encode()

        server, port = await owner(handle)
        link = PeerLink("127.0.0.1", port)
        try:
            slow = asyncio.create_task(link.request("POST", "slow", b"1"))
            quick = await asyncio.wait_for(asyncio.gather(*(link.request("POST", f"c{n}", b"x") for n in range(50))), 5)
            assert not slow.done()
            slow_may_answer.set()
            return quick, await asyncio.wait_for(slow, 5)
        finally:
            await link.close()
            await server.close()

    quick, slow = asyncio.run(scenario())
    assert [body for _, _, body in quick] == [f"c{n}".encode() for n in range(50)]  # each answer to its request
    assert slow == (200, {}, b"slow")


def test_an_owner_that_is_not_there_is_gone_and_one_that_comes_back_is_reached_again():
    async def handle(method, connection_id, body):
        return 200, {}, b""

    async def scenario():
        server, port = await owner(handle)
        await server.close()
        link = PeerLink("127.0.0.1", port)
        with pytest.raises(PeerGone):
            await link.request("GET", "c", b"")
        server, _ = await owner(handle, port)  # started again, on its port
        try:
            return await link.request("GET", "c", b"")
        finally:
            await link.close()
            await server.close()

    assert asyncio.run(scenario()) == (200, {}, b"")


def test_requests_waiting_on_an_owner_that_dies_are_gone():
    async def scenario():
        async def dies_after_reading_a_request(reader, writer):
            await reader.readline()
            writer.close()  # as the process's end of the stream does when it is killed

        server = await asyncio.start_server(dies_after_reading_a_request, "127.0.0.1", 0)
        link = PeerLink("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            with pytest.raises(PeerGone):
                await asyncio.wait_for(link.request("POST", "c", b"x"), 5)
        finally:
            await link.close()
            server.close()

    asyncio.run(scenario())


def test_closing_leaves_nothing_running_once_the_loop_stops():
    async def handle(method, connection_id, body):
        await asyncio.sleep(30)  # still answering when the process stops
        return 200, {}, b""

    async def scenario():
        server, port = await owner(handle)
        link = PeerLink("127.0.0.1", port)
        waiting = asyncio.create_task(link.request("POST", "c", b"x"))
        await asyncio.sleep(0.1)
        await server.close()
        await link.close()
        with pytest.raises(PeerGone):
            await asyncio.wait_for(waiting, 5)
        return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]

    assert asyncio.run(scenario()) == []


def test_closing_with_streams_open_reports_no_error():
    """A session task that ended cancelled is reported by asyncio's stream protocol as an error at shutdown."""
    reported = []

    async def handle(method, connection_id, body):
        return 200, {}, b""

    async def scenario():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        server, port = await owner(handle)
        link = PeerLink("127.0.0.1", port)
        assert (await link.request("POST", "c", b"x"))[0] == 200  # the stream is open, its session reading
        await server.close()
        await link.close()
        await asyncio.sleep(0.05)  # the protocol's done callbacks run

    asyncio.run(scenario())
    assert reported == []
