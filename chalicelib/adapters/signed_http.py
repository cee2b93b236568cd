"""Signed calls on the engine's two hottest paths to AWS: one ``@connections`` post per WebSocket frame and one SQS
``SendMessage`` per order.

boto3's clients spent about 1 ms of CPU per call on our 2-core machine, most of it in botocore's event hooks,
parameter validation and endpoint resolution, and urllib3 spends twice what the standard library's ``http.client``
does on the same request. Here a request is signed with botocore's SigV4 signer and sent over a kept-alive
``http.client`` connection: the same wire format and answers for about a third of boto3's CPU. Throttling and
server errors are retried with backoff, as botocore's standard retry mode does.

botocore is imported on first use: it is a good part of a cold start, and an invocation that neither pushes nor
places an order never needs it.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

RETRIED = frozenset({429, 500, 502, 503, 504})  # throttling and transient failures
# Raised when a kept-alive connection turns out to have been closed by the server before it read the request:
# nothing was done, so the request goes again on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Unreachable(Exception):
    """The service could not be reached, or did not answer in time."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes
    headers: Message


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
        self.attempts = attempts
        self._sleep = sleep

    def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        """The answer to a SigV4-signed POST; throttling and server errors are tried again with backoff,
        ``attempts`` times in all, and the last answer is returned whatever it is."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        attempt = 1
        while True:
            request = AWSRequest("POST", url, data=body, headers=headers or {})
            SigV4Auth(self._credentials.get_frozen_credentials(), self._service, self._region).add_auth(request)
            answer = self._connections.post(url, body, dict(request.headers))
            if answer.status not in RETRIED or attempt == self.attempts:
                return answer
            self._sleep(0.05 * 2**attempt)
            attempt += 1


class _Connections:
    """Kept-alive connections, each lent to one caller at a time and kept for the next while the server keeps it."""

    def __init__(self, size: int, timeout_s: float):
        self._size = size
        self._timeout_s = timeout_s
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection, reused = self._lend(origin)
        try:
            try:
                return self._exchange(connection, origin, path, body, headers)
            except _STALE:
                if not reused:
                    raise
                connection.close()
                connection = self._open(origin)
                return self._exchange(connection, origin, path, body, headers)
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, not HTTP
            connection.close()
            raise Unreachable(f"{parts.scheme}://{parts.netloc}: {type(error).__name__}: {error}") from error

    def _exchange(self, connection: http.client.HTTPConnection, origin: tuple[str, str, int], path: str,
                  body: bytes, headers: dict[str, str]) -> Answer:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        answer = Answer(response.status, response.read(), response.headers)
        if response.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        return answer

    def _lend(self, origin: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                connection = idle.pop()
                if not _closed_by_server(connection):
                    return connection, True
                connection.close()
        return self._open(origin), False

    def _open(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme != "https":
            return http.client.HTTPConnection(host, port, timeout=self._timeout_s)
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=self._timeout_s, context=self._tls)

    def _give_back(self, origin: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self._size:
                idle.append(connection)
                return
        connection.close()


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    # An idle connection has nothing to read: a readable one was closed by the server (or is broken).
    if connection.sock is None:
        return True
    poller = select.poll()  # not select(): descriptors above 1024 are common in a busy process
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))
