"""API Gateway's WebSocket limits: 32 KB frames and 128 KB messages (larger ones close the connection with 1009),
the idle timeout and the maximum connection duration."""

from __future__ import annotations

from typing import Any

from aiohttp import WebSocketError, WSCloseCode, web

MAX_MESSAGE_BYTES = 128 * 1024
MAX_FRAME_BYTES = 32 * 1024


def closing_reason(connected_at_ms: int, last_active_ms: int, now_ms: int, idle_timeout_s: float,
                   max_connection_s: float) -> str | None:
    """Why API Gateway would close a connection now: ``idle`` (no message for the idle timeout) or ``too old``
    (past the maximum duration); None to keep it open."""
    if (now_ms - last_active_ms) / 1000 >= idle_timeout_s:
        return "idle"
    if (now_ms - connected_at_ms) / 1000 >= max_connection_s:
        return "too old"
    return None


class FrameSizeGuard:
    """Refuses data frames over API Gateway's frame limit (aiohttp only bounds whole messages): reads each frame's
    header from the raw bytes ahead of aiohttp's own parser and closes the connection with 1009 on a larger one."""

    def __init__(self, parser: Any, queue: Any, max_frame_bytes: int):
        self._parser = parser
        self._queue = queue
        self._max = max_frame_bytes
        self._header = bytearray()
        self._payload_left = 0
        self._refused = False

    @classmethod
    def install(cls, ws: web.WebSocketResponse, request: web.Request, max_frame_bytes: int) -> None:
        # aiohttp (pinned; a test covers this) keeps its frame parser and message queue on the response and the
        # protocol; no frame has been read yet when prepare() returns.
        protocol: Any = request.protocol
        protocol._payload_parser = cls(ws._parser, ws._reader, max_frame_bytes)

    def feed_eof(self) -> Any:
        return self._parser.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        # Once a frame or message is refused, what the client still sends is read and dropped instead of closing
        # the socket at once: closing with unread data resets the connection before the client reads the 1009.
        if self._refused:
            return False, b""
        if self._oversized(data):
            self._refused = True
            self._queue.set_exception(
                WebSocketError(WSCloseCode.MESSAGE_TOO_BIG, f"frame over the {self._max}-byte limit"))
            return False, b""
        eof, tail = self._parser.feed_data(data)
        if eof and self._queue.exception() is not None:  # aiohttp refused the message (over 128 KB)
            self._refused = True
            return False, b""
        return eof, tail

    def _oversized(self, data: bytes) -> bool:
        position = 0
        while position < len(data):
            if self._payload_left:
                step = min(self._payload_left, len(data) - position)
                self._payload_left -= step
                position += step
                continue
            self._header.append(data[position])
            position += 1
            length = self._frame_length()
            if length is None:
                continue  # the header is not complete yet
            opcode = self._header[0] & 0x0F
            self._header.clear()
            if opcode in (0x0, 0x1, 0x2) and length > self._max:  # continuation, text, binary
                return True
            self._payload_left = length
        return False

    def _frame_length(self) -> int | None:
        header = self._header
        if len(header) < 2:
            return None
        short = header[1] & 0x7F
        extended = {126: 2, 127: 8}.get(short, 0)
        mask = 4 if header[1] & 0x80 else 0
        if len(header) < 2 + extended + mask:
            return None
        return int.from_bytes(header[2:2 + extended], "big") if extended else short
