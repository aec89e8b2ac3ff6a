"""TcpReassembler on real TCP: Python sockets on loopback writing SIP (and SIP over WebSocket) in
deliberately odd patterns, captured by a real ``tcpdump -i lo``, read back from the pcap and
compared with what was sent and with what tshark frames out of the same file."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kamlog.capture.packets import Payload
from kamlog.capture.tcp import TcpReassembler
from kamlog.capture.websocket import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, WsFramer, build_frame
from tests.capture.realcap import pcap_ipv4
from tests.corpus.runners import LOOPBACK, Tcpdump

pytestmark = [
    pytest.mark.realworld,
    pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("tshark") is None,
                       reason="needs tcpdump and tshark"),
]


def reassemble(path: Path) -> tuple[list[Payload], TcpReassembler]:
    tcp = TcpReassembler()
    out: list[Payload] = []
    for number, ts_ns, proto, sip_, sp, dip, dp, seq, flags, data in pcap_ipv4(path):
        if proto == 6:
            out += tcp.segment(sip_, sp, dip, dp, seq, flags, data, ts_ns, 6, str(path), number)
    out += tcp.flush()
    return out, tcp


def tshark_sip(path: Path, port: int, *extra: str) -> list[tuple[int, str]]:
    """(frame number, Call-ID) of each SIP message tshark finds, one pair per message."""
    done = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-d", f"tcp.port=={port},sip", *extra, "-Y", "sip",
         "-T", "fields", "-e", "frame.number", "-e", "sip.Call-ID"],
        capture_output=True, text=True, timeout=60, check=True)
    pairs = []
    for line in done.stdout.splitlines():
        number, _, ids = line.partition("\t")
        pairs += [(int(number), cid) for cid in ids.split(",") if cid]
    return pairs


def call_id(data: bytes) -> str:
    m = re.search(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", data, re.IGNORECASE)
    assert m is not None, data[:200]
    return m[1].decode()


def request(n: int, body: bytes = b"") -> bytes:
    return (f"MESSAGE sip:bob@{LOOPBACK} SIP/2.0\r\nVia: SIP/2.0/TCP {LOOPBACK};branch=z9hG4bK-{n}\r\n"
            f"From: <sip:alice@kamlog.test>;tag={n}\r\nTo: <sip:bob@kamlog.test>\r\n"
            f"Call-ID: tcp-real-{n}@kamlog.test\r\nCSeq: {n} MESSAGE\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def response(n: int) -> bytes:
    return (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP {LOOPBACK};branch=z9hG4bK-{n}\r\n"
            f"Call-ID: tcp-real-{n}@kamlog.test\r\nCSeq: {n} MESSAGE\r\nl: 0\r\n\r\n").encode()


def nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def dribble(sock: socket.socket, data: bytes, step: int) -> None:
    """Send ``data`` in ``step``-byte writes with a pause after each, so each is its own segment."""
    for i in range(0, len(data), step):
        sock.sendall(data[i:i + step])
        time.sleep(0.004)


class Server(threading.Thread):
    """Accepts one connection on loopback and runs ``handler`` on it (bounded by timeouts)."""

    def __init__(self, handler: object) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                self.handler(nodelay(conn))  # type: ignore[operator]
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.listener.close()


def read_exactly(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class TestRealTcp:
    def test_odd_write_patterns_frame_the_sent_messages_like_tshark(self, tmp_path: Path) -> None:
        to_server = [request(1, b"dribbled " * 40), request(2), request(3, b"x"), request(4, b"y" * 5),
                     request(5, b"big " * 40_000), request(6, b"after big")]
        to_client = [response(i) for i in range(1, 7)]
        wire_to_server = b"".join(to_server) + b"\r\n\r\n"

        def serve(conn: socket.socket) -> None:
            read_exactly(conn, len(wire_to_server))
            conn.sendall(to_client[0] + to_client[1] + to_client[2][:17])
            time.sleep(0.01)
            dribble(conn, to_client[2][17:] + b"\r\n" + to_client[3], 9)
            conn.sendall(b"".join(to_client[4:]))

        server = Server(serve)
        pcap = tmp_path / "tcp.pcap"
        with Tcpdump(tmp_path, pcap, [server.port], protocols="tcp"):
            server.start()
            with nodelay(socket.create_connection((LOOPBACK, server.port), timeout=10)) as client:
                dribble(client, to_server[0], 37)  # one message in many segments
                client.sendall(to_server[1] + to_server[2] + to_server[3][:50])  # two and a half
                time.sleep(0.01)
                client.sendall(to_server[3][50:])
                client.sendall(b"\r\n\r\n" + to_server[4])  # a keep-alive, then > 64 KiB in several segments
                client.sendall(to_server[5] + b"\r\n\r\n")
                got = read_exactly(client, sum(map(len, to_client)) + 2)
            server.join(10)
        assert server.error is None
        assert got == b"".join(to_client[:3]) + b"\r\n" + b"".join(to_client[3:])

        payloads, tcp = reassemble(pcap)
        up = [p.data for p in payloads if p.dst_port == server.port]
        down = [p.data for p in payloads if p.src_port == server.port]
        assert up == to_server
        assert down == to_client
        assert all(p.transport == "tcp" for p in payloads)
        c = tcp.counters
        assert (c.keepalives, c.gaps, c.skipped_bytes, c.errors, c.streams) == (3, 0, 0, 0, 2)
        assert len(payloads[0].parts) > 5  # the dribbled message names its segments
        big = next(p for p in payloads if p.data == to_server[4])
        assert big.parts, "a message larger than one loopback segment names its other frames"

        # tshark frames every message the same way, at the same frame, except those that follow a
        # CRLF keep-alive (it shows those segments as "Continuation" and may lose what follows).
        ours = {(p.frame, call_id(p.data)) for p in payloads}
        theirs = set(tshark_sip(pcap, server.port))
        assert theirs <= ours
        maybe_missed = {call_id(m) for m in (to_server[4], to_server[5], to_client[3])}
        assert {cid for _, cid in ours - theirs} <= maybe_missed
        assert len(theirs) >= len(ours) - 3

    def test_a_capture_started_mid_connection_resyncs_at_the_next_message(self, tmp_path: Path) -> None:
        started = threading.Event()
        go = threading.Event()

        def serve(conn: socket.socket) -> None:
            conn.sendall(response(1)[:30])
            started.set()
            go.wait(10)
            conn.sendall(response(1)[30:] + response(2))
            time.sleep(0.05)

        server = Server(serve)
        server.start()
        pcap = tmp_path / "mid.pcap"
        with nodelay(socket.create_connection((LOOPBACK, server.port), timeout=10)) as client:
            started.wait(10)
            with Tcpdump(tmp_path, pcap, [server.port], protocols="tcp"):
                go.set()
                read_exactly(client, len(response(1)) + len(response(2)))
                server.join(10)
        payloads, tcp = reassemble(pcap)
        assert [p.data for p in payloads] == [response(2)]
        assert tcp.counters.skipped_bytes == len(response(1)) - 30


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B4A"


def ws_handshake_request(port: int, key: bytes) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nOrigin: http://{LOOPBACK}\r\n"
            "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def read_head(conn: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(1)
        if not chunk:
            raise AssertionError(f"connection closed inside the HTTP head: {buf!r}")
        buf += chunk
    return buf


def read_ws_messages(conn: socket.socket, count: int) -> list[bytes]:
    """Read frames until ``count`` data messages arrived, with kamlog's framer (tested above)."""
    framer = WsFramer(1 << 20)
    buf, out = bytearray(), []
    while len(out) < count:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        pos = 0
        while True:
            nxt, msg, _ = framer.frame(buf, pos, 0)
            if nxt == pos:
                break
            if msg is not None:
                out.append(msg)
            pos = nxt
        del buf[:pos]
    return out


class TestRealWebSocket:
    def test_sip_over_websocket_is_unmasked_and_framed_like_tshark(self, tmp_path: Path) -> None:
        key = base64.b64encode(os.urandom(16))
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        to_server = [request(11, b"over websocket"), request(12, b"f" * 3000), request(13, b"z" * 70_000)]
        to_client = [response(11), response(12), response(13)]

        def serve(conn: socket.socket) -> None:
            head = read_head(conn)
            assert b"Upgrade: websocket" in head
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
            read_ws_messages(conn, len(to_server))
            conn.sendall(build_frame(to_client[0]) + build_frame(b"", opcode=OP_PING))
            dribble(conn, build_frame(to_client[1]), 11)
            conn.sendall(build_frame(to_client[2][:40], opcode=OP_TEXT, fin=False)
                         + build_frame(to_client[2][40:], opcode=OP_CONTINUATION))

        server = Server(serve)
        pcap = tmp_path / "ws.pcap"
        with Tcpdump(tmp_path, pcap, [server.port], protocols="tcp"):
            server.start()
            with nodelay(socket.create_connection((LOOPBACK, server.port), timeout=10)) as client:
                client.sendall(ws_handshake_request(server.port, key))
                assert accept in read_head(client)
                mask = os.urandom
                dribble(client, build_frame(to_server[0], key=mask(4)), 5)
                client.sendall(build_frame(to_server[1][:1000], opcode=OP_BINARY, fin=False, key=mask(4))
                               + build_frame(b"ping", opcode=OP_PING, key=mask(4))
                               + build_frame(to_server[1][1000:], opcode=OP_CONTINUATION, key=mask(4)))
                client.sendall(build_frame(to_server[2], key=mask(4)))
                got = read_ws_messages(client, len(to_client))
                client.sendall(build_frame(b"\x03\xe8", opcode=8, key=mask(4)))
            server.join(10)
        assert server.error is None
        assert got == to_client

        payloads, tcp = reassemble(pcap)
        assert [p.data for p in payloads if p.dst_port == server.port] == to_server
        assert [p.data for p in payloads if p.src_port == server.port] == to_client
        assert {p.transport for p in payloads} == {"ws"}
        c = tcp.counters
        assert (c.ws_streams, c.ws_messages, c.ws_control, c.messages, c.errors) == (2, 6, 3, 0, 0)

        ours = sorted((p.frame, call_id(p.data)) for p in payloads)
        theirs = tshark_sip(pcap, server.port, "-d", f"tcp.port=={server.port},http")
        assert ours == sorted(theirs)
