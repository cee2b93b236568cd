"""The WSGI server moto runs behind: each connection kept alive in a thread of its own, requests and answers as
HTTP/1.1 frames them, over a real loopback socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.wsgi_server import WsgiServer


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with what it was given; a few paths answer otherwise."""
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("the application broke")
    if path == "/empty":
        start_response("204 No Content", [("X-Seen", "yes")])
        return []
    if path == "/legacy-write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then returned"]
    body = environ["wsgi.input"].read()
    seen = {key: environ[key] for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH",
                                          "SERVER_PROTOCOL", "SERVER_NAME")}
    seen.update({key: value for key, value in environ.items() if key.startswith("HTTP_") or key == "CONTENT_TYPE"})
    seen["body"] = body.decode()
    payload = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "999"),
                              ("Connection", "keep-alive")])  # hop-by-hop: the server writes its own
    return [payload[:10], payload[10:]]


@pytest.fixture
def server() -> Iterator[WsgiServer]:
    server = WsgiServer(("127.0.0.1", 0), echo, idle_timeout_s=0.5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Client:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> tuple[str, dict[str, str], bytes]:
        """One answer: the status line, the headers (lower-case names) and the body its Content-Length gives."""
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        self.sock.settimeout(3)
        return self.sock.recv(1) == b""

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buffer += data


def post(path: str, body: bytes, *headers: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"POST {path} {version}", "Host: 127.0.0.1", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def test_requests_on_one_kept_alive_connection_each_reach_the_application(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/a%20b?x=1&y=2", b'{"first": 1}', "Content-Type: application/json", "X-Amz-Target: SQS.Send"))
    status, headers, body = client.answer()
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-length"] == str(len(body)) and "connection" not in headers
    seen = json.loads(body)
    assert seen == {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/a b", "QUERY_STRING": "x=1&y=2", "CONTENT_LENGTH": "12",
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "HTTP_X_AMZ_TARGET": "SQS.Send", "body": '{"first": 1}',
    }
    # Two more, written at once: answered in order on the same connection.
    client.send(post("/second", b"2") + post("/third", b"3"))
    assert json.loads(client.answer()[2])["body"] == "2"
    assert json.loads(client.answer()[2])["PATH_INFO"] == "/third"


def test_a_client_that_asks_to_close_gets_its_answer_and_then_the_close(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/", b"bye", "Connection: close"))
    status, headers, body = client.answer()
    assert status.endswith("200 OK") and headers["connection"] == "close" and json.loads(body)["body"] == "bye"
    assert client.closed_by_server()


def test_an_http_1_0_request_is_answered_and_its_connection_closed(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/", b"old", version="HTTP/1.0"))
    _, headers, body = client.answer()
    assert json.loads(body)["SERVER_PROTOCOL"] == "HTTP/1.0" and headers["connection"] == "close"
    assert client.closed_by_server()


def test_a_chunked_body_is_put_together(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(b"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    seen = json.loads(client.answer()[2])
    assert seen["body"] == "hello, world" and seen["CONTENT_LENGTH"] == "12"
    client.send(post("/after", b"next"))  # the connection is still in step
    assert json.loads(client.answer()[2])["body"] == "next"


def test_head_answers_its_length_without_a_body(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(b"HEAD /thing HTTP/1.1\r\nHost: x\r\n\r\n")
    client.sock.settimeout(3)
    head = b""
    while b"\r\n\r\n" not in head:
        head += client.sock.recv(65536)
    status, _, rest = head.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK" and b"Content-Length: " in rest and rest.endswith(b"\r\n\r\n")
    client.send(post("/after-head", b"x"))  # nothing stray was written before this answer
    assert json.loads(client.answer()[2])["PATH_INFO"] == "/after-head"


def test_no_content_has_no_length_and_the_connection_goes_on(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/empty", b""))
    status, headers, body = client.answer()
    assert status == "HTTP/1.1 204 No Content" and headers["x-seen"] == "yes"
    assert "content-length" not in headers and body == b""
    client.send(post("/after-empty", b"y"))
    assert json.loads(client.answer()[2])["body"] == "y"


def test_what_the_application_writes_comes_before_what_it_returns(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/legacy-write", b""))
    assert client.answer()[2] == b"written, then returned"


def test_an_application_that_fails_answers_500_and_closes(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/fail", b""))
    status, headers, body = client.answer()
    assert status == "HTTP/1.1 500 Internal Server Error" and headers["connection"] == "close"
    assert body == b"Internal Server Error"
    assert client.closed_by_server()
    other = Client(server.port)  # the server itself goes on
    other.send(post("/", b"fine"))
    assert json.loads(other.answer()[2])["body"] == "fine"


@pytest.mark.parametrize("length", ["abc", "-1", "10"])
def test_a_body_that_does_not_match_its_length_is_a_bad_request(server: WsgiServer, length: str) -> None:
    client = Client(server.port)
    client.send(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nshort".encode())
    if length == "10":
        client.sock.shutdown(socket.SHUT_WR)  # the client gives up before the length it promised
    status, headers, _ = client.answer()
    assert status == "HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
    assert client.closed_by_server()


def test_repeated_headers_reach_the_application_joined(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/", b"", "X-Tag: one", "X-Tag: two"))
    assert json.loads(client.answer()[2])["HTTP_X_TAG"] == "one,two"


def test_a_client_that_expects_100_continue_is_told_to_go_on(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    status, _, _ = client.answer()
    assert status == "HTTP/1.1 100 Continue"
    client.send(b"body")
    assert json.loads(client.answer()[2])["body"] == "body"


def test_an_idle_connection_is_closed_after_the_idle_timeout(server: WsgiServer) -> None:
    client = Client(server.port)
    client.send(post("/", b"once"))
    client.answer()
    started = time.monotonic()
    assert client.closed_by_server()
    assert 0.3 < time.monotonic() - started < 3


def test_connections_are_served_at_the_same_time(server: WsgiServer) -> None:
    """A connection waiting for its answer (a long poll) does not hold up another's."""
    waiting = Client(server.port)
    waiting.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")  # its body never completes
    other = Client(server.port)
    other.send(post("/", b"meanwhile"))
    assert json.loads(other.answer()[2])["body"] == "meanwhile"
