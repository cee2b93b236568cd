"""Signed calls on the engine's two hottest paths to AWS: one ``@connections`` post per WebSocket frame and one SQS
``SendMessage`` per order.

boto3's clients spent about 1 ms of CPU per call on our 2-core machine, most of it in botocore's event hooks,
parameter validation and endpoint resolution, and urllib3 spends twice what the standard library's ``http.client``
does on the same request. Here a request is signed as botocore's SigV4 signer signs it (``sigv4.py``) and sent over a
kept-alive HTTP/1.1 connection of our own (``_HttpConnection``): the same wire format and answers for about a sixth
of boto3's CPU.
Throttling and server errors are retried with backoff, as botocore's standard retry mode does.

botocore's utilities are imported on first use: botocore is a good part of a cold start, and an invocation that
neither pushes nor places an order never needs it.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .sigv4 import SigV4Signer

RETRIED = frozenset({429, 500, 502, 503, 504})  # throttling and transient failures
# Raised when a kept-alive connection turns out to have been closed by the server before it read the request:
# nothing was done, so the request goes again on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)  # raised by ``_HttpConnection``


class Unreachable(Exception):
    """The service could not be reached, or did not answer in time."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes
    headers: Mapping[str, str]  # names in lower case


class SignedHttp:
    def __init__(
        self,
        service: str,
        region: str,
        credentials: Any,
        pool_size: int = 64,
        read_timeout_s: float = 5,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._service = service
        self._region = region
        self._credentials = credentials  # botocore credentials: refreshed by botocore when they expire
        self._connections = _Connections(pool_size, read_timeout_s)
        self._signer: SigV4Signer | None = None
        self.attempts = attempts
        self._sleep = sleep

    def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        """The answer to a SigV4-signed POST; throttling and server errors are tried again with backoff,
        ``attempts`` times in all, and the last answer is returned whatever it is."""
        signer = self._signer or self._new_signer()
        attempt = 1
        while True:
            signed = signer.sign("POST", url, body, headers or {}, self._credentials.get_frozen_credentials())
            answer = self._connections.post(url, body, signed)
            if answer.status not in RETRIED or attempt == self.attempts:
                return answer
            self._sleep(0.05 * 2**attempt)
            attempt += 1

    def _new_signer(self) -> SigV4Signer:
        from .sigv4 import SigV4Signer  # botocore's utilities, on first use (see above)

        self._signer = SigV4Signer(self._service, self._region)
        return self._signer


class _Connections:
    """Kept-alive connections, each lent to one caller at a time and kept for the next while the server keeps it."""

    def __init__(self, size: int, timeout_s: float):
        self._size = size
        self._timeout_s = timeout_s
        self._idle: dict[tuple[str, str, int], list[_HttpConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        request = _request_bytes(path, parts.netloc, body, headers)
        connection, reused = self._lend(origin)
        try:
            try:
                answer = connection.exchange(request)
            except _STALE:
                if not reused:
                    raise
                connection.close()
                connection = self._open(origin)
                answer = connection.exchange(request)
        except (OSError, ValueError, http.client.HTTPException) as error:  # refused, reset, timed out, not HTTP
            connection.close()
            raise Unreachable(f"{parts.scheme}://{parts.netloc}: {type(error).__name__}: {error}") from error
        if connection.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        return answer

    def _lend(self, origin: tuple[str, str, int]) -> tuple[_HttpConnection, bool]:
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                connection = idle.pop()
                if not connection.closed_by_server():
                    return connection, True
                connection.close()
        return self._open(origin), False

    def _open(self, origin: tuple[str, str, int]) -> _HttpConnection:
        scheme, host, port = origin
        if scheme == "https" and self._tls is None:
            self._tls = ssl.create_default_context()
        return _HttpConnection(host, port, self._timeout_s, self._tls if scheme == "https" else None)

    def _give_back(self, origin: tuple[str, str, int], connection: _HttpConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._size:
                idle.append(connection)
                return
        connection.close()


def _request_bytes(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers.items()),
             f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


class _HttpConnection:
    """One HTTP/1.1 connection: a request written in one send, its answer read through a buffered reader (headers
    by line, the body by its length, in chunks, or up to the server's close). Hand-written because it is faster,
    measured on a @connections post to the local gateway: 128 us of client CPU per post (signing included) where
    ``http.client`` took 217, most of it parsing headers through ``email``."""

    def __init__(self, host: str, port: int, timeout_s: float, tls: ssl.SSLContext | None):
        self._address = (host, port)
        self._timeout_s = timeout_s
        self._tls = tls
        self._sock: socket.socket | None = None  # connected by the first exchange, where a refusal is reported
        self._reader: BinaryIO | None = None
        self.will_close = False

    def exchange(self, request: bytes) -> Answer:
        if self._sock is None:
            self._connect()
        assert self._sock is not None and self._reader is not None
        self._sock.sendall(request)
        status_line = self._reader.readline(65537)
        if not status_line:
            raise http.client.RemoteDisconnected("the server closed the connection without answering")
        version, status, _ = (status_line.decode("latin-1").rstrip("\r\n") + " ").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := self._reader.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.will_close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
        if "content-length" in headers:
            data = self._read_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = self._read_chunks()
        else:  # the body ends where the connection does
            data, self.will_close = self._reader.read(), True
        return Answer(int(status), data, headers)

    def _connect(self) -> None:
        sock = socket.create_connection(self._address, timeout=self._timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request is one small write: send it now
        self._sock = self._tls.wrap_socket(sock, server_hostname=self._address[0]) if self._tls else sock
        self._reader = self._sock.makefile("rb")

    def _read_exactly(self, length: int) -> bytes:
        assert self._reader is not None
        data = self._reader.read(length)
        if len(data) < length:
            raise http.client.IncompleteRead(data, length - len(data))
        return data

    def _read_chunks(self) -> bytes:
        assert self._reader is not None
        chunks = []
        while size := int(self._reader.readline(65537).split(b";")[0].strip() or b"0", 16):
            chunks.append(self._read_exactly(size))
            self._reader.readline(65537)  # the CRLF after each chunk
        while self._reader.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def closed_by_server(self) -> bool:
        # An idle connection has nothing to read: a readable one was closed by the server (or is broken).
        if self._sock is None or self._sock.fileno() < 0:
            return True
        poller = select.poll()  # not select(): descriptors above 1024 are common in a busy process
        poller.register(self._sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            self._sock.close()
