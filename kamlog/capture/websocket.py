"""SIP over WebSocket (RFC 7118, RFC 6455) without TLS: the HTTP upgrade that starts a connection,
then the frames whose messages carry SIP.

The TCP reassembler (tcp.py) owns the byte stream; it asks :func:`upgrade_header_end` whether a
stream opens with a WebSocket handshake, then hands each direction's bytes to a :class:`WsFramer`.
"""

from __future__ import annotations

import re

from kamlog.errors import KamlogError

_HTTP_HEAD_END = b"\r\n\r\n"
_UPGRADE = re.compile(rb"\r\nupgrade[ \t]*:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)
_PROTOCOL = re.compile(rb"\r\nsec-websocket-protocol[ \t]*:([^\r\n]*)\r\n", re.IGNORECASE)
_SIP_TOKEN = re.compile(rb"(?:^|,)[ \t]*sip[ \t]*(?:,|$)", re.IGNORECASE)

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WebSocketError(KamlogError):
    """A WebSocket frame that RFC 6455 does not allow; the rest of that stream cannot be framed."""


def looks_like_handshake(buf: bytes | bytearray, pos: int) -> bool:
    """True if the bytes at ``pos`` begin an HTTP request or response (a candidate handshake)."""
    return buf.startswith(b"GET ", pos) or buf.startswith(b"HTTP/1.", pos)


def upgrade_header_end(buf: bytes | bytearray, pos: int, limit: int) -> int | None:
    """If ``buf[pos:]`` holds a whole HTTP head that upgrades to WebSocket for SIP (a client's
    ``GET`` with ``Upgrade: websocket`` or the server's ``101``), the offset just after its blank
    line; ``-1`` when the head is whole but is no SIP WebSocket upgrade; ``None`` while it is
    incomplete (and shorter than ``limit`` bytes)."""
    end = buf.find(_HTTP_HEAD_END, pos, pos + limit)
    if end < 0:
        return None if len(buf) - pos < limit else -1
    head_end = end + 2
    if buf.startswith(b"HTTP/1.", pos):
        line_end = buf.find(b"\r\n", pos, head_end)
        status = bytes(buf[pos:line_end]).split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            return -1
    if _UPGRADE.search(buf, pos, head_end) is None:
        return -1
    proto = _PROTOCOL.search(buf, pos, head_end)
    if proto is None or _SIP_TOKEN.search(proto[1]) is None:
        return -1
    return end + 4


class WsFramer:
    """One direction of a WebSocket connection: frames in, whole (unmasked, reassembled) messages out.

    Control frames (ping, pong, close) are counted and dropped; fragmented messages are joined.
    ``max_message`` bounds a frame and a reassembled message, so a lying length is an error, not
    an unbounded buffer."""

    __slots__ = ("max_message", "fragments", "fragments_size", "message_start", "frames", "control",
                 "closed")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.fragments: list[bytes] = []
        self.fragments_size = 0
        self.message_start = -1  # offset in the stream of the first frame of a fragmented message
        self.frames = 0
        self.control = 0
        self.closed = False

    def frame(self, buf: bytes | bytearray, pos: int, base: int) -> tuple[int, bytes | None, int]:
        """Parse one frame at ``buf[pos:]`` (``base`` is the stream offset of ``buf[0]``).

        Returns ``(next_pos, message, message_start)``: ``next_pos == pos`` when the frame is not
        whole yet; ``message`` is the payload of a finished data message (else None) and
        ``message_start`` the stream offset where its first frame began. Raises
        :class:`WebSocketError` for a frame RFC 6455 forbids."""
        avail = len(buf) - pos
        if avail < 2:
            return pos, None, -1
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = b0 & 0x0F
        if b0 & 0x70:
            raise WebSocketError(f"WebSocket frame with reserved bits set (first byte {b0:#04x})")
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if avail < 4:
                return pos, None, -1
            length = int.from_bytes(buf[pos + 2:pos + 4], "big")
            head = 4
        elif length == 127:
            if avail < 10:
                return pos, None, -1
            length = int.from_bytes(buf[pos + 2:pos + 10], "big")
            head = 10
        masked = b1 & 0x80
        if opcode >= 8:
            if length > 125 or not b0 & 0x80:
                raise WebSocketError(f"WebSocket control frame (opcode {opcode}) of {length} bytes "
                                     "or fragmented")
        elif opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY):
            raise WebSocketError(f"WebSocket frame with reserved opcode {opcode}")
        if length > self.max_message:
            raise WebSocketError(f"WebSocket frame of {length} bytes is over the "
                                 f"{self.max_message}-byte limit")
        key_at = pos + head
        data_at = key_at + 4 if masked else key_at
        end = data_at + length
        if end > len(buf):
            return pos, None, -1
        self.frames += 1
        payload = bytes(buf[data_at:end])
        if masked:
            payload = unmask(payload, bytes(buf[key_at:data_at]))
        if opcode >= 8:
            self.control += 1
            if opcode == OP_CLOSE:
                self.closed = True
            return end, None, -1
        start = base + pos
        if opcode == OP_CONTINUATION:
            if not self.fragments:
                raise WebSocketError("WebSocket continuation frame without a message to continue")
        elif self.fragments:
            raise WebSocketError("WebSocket data frame inside a fragmented message")
        else:
            self.message_start = start
        if b0 & 0x80 and not self.fragments:
            return end, payload, start
        self.fragments.append(payload)
        self.fragments_size += len(payload)
        if self.fragments_size > self.max_message:
            raise WebSocketError(f"fragmented WebSocket message over the {self.max_message}-byte limit")
        if not b0 & 0x80:
            return end, None, -1
        message = b"".join(self.fragments)
        self.fragments = []
        self.fragments_size = 0
        return end, message, self.message_start


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte masking ``key`` (RFC 6455 section 5.3), as one
    big-integer XOR rather than a Python loop per byte."""
    n = len(payload)
    if n == 0:
        return payload
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def mask(payload: bytes, key: bytes) -> bytes:
    """Masking is its own inverse; named for the tests and tools that build client frames."""
    return unmask(payload, key)


def build_frame(payload: bytes, *, opcode: int = OP_TEXT, fin: bool = True,
                key: bytes | None = None) -> bytes:
    """One WebSocket frame (masked with ``key`` when given, as a client must send it)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if key is not None else 0
    if n < 126:
        head = bytes([b0, mask_bit | n])
    elif n < 65536:
        head = bytes([b0, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, mask_bit | 127]) + n.to_bytes(8, "big")
    if key is None:
        return head + payload
    return head + key + unmask(payload, key)
