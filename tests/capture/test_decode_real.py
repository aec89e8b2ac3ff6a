"""TCP segments of a real capture handed to the TCP sink as tshark sees them: Python sockets on
127.0.0.1 and ::1 exchange SIP-looking messages, tcpdump captures them on ``lo`` (Ethernet) and
``-i any`` (Linux cooked v2); every segment with data, SYN, FIN or RST reaches the sink with
tshark's addresses, ports, raw sequence number, flags and payload."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from kamlog.capture.decode import TCP_FIN, TCP_RST, TCP_SYN, PacketDecoder
from kamlog.capture.files import open_capture
from kamlog.capture.tcp import TcpReassembler
from tests.capture.realcap import Captures, decode_all, free_udp_port, need, sip_text, tcpdump, tshark_fields
from tests.capture.test_decode import RecordingSink

pytestmark = [pytest.mark.realworld, need("tcpdump", "tshark")]


def exchange(port: int) -> list[bytes]:
    """Two TCP connections (IPv4, IPv6), each carrying three SIP requests written in odd pieces
    and an answer; returns the requests."""
    sent = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen(1)
        got = bytearray()

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    got.extend(chunk)
                    if got.count(b"\r\n\r\n") >= 3:
                        conn.sendall(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                        break

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection((host, port), timeout=10) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(3):
                message = sip_text(f"tcp-{family}-{i}@kamlog.test", body=300 * i)
                sent.append(message)
                for piece in (message[:50], message[50:]):
                    client.sendall(piece)
            client.recv(1000)
        thread.join(10)
        server.close()
    return sent


@pytest.fixture(scope="module")
def tcp_captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[bytes]]:
    workdir = tmp_path_factory.mktemp("tcp")
    port = free_udp_port()
    paths = [workdir / "lo.pcap", workdir / "any.pcap"]
    bpf = f"tcp port {port}"
    with Captures(tcpdump(workdir, "lo", paths[0], bpf), tcpdump(workdir, "any", paths[1], bpf, interface="any")):
        sent = exchange(port)
    return paths, sent


@pytest.mark.parametrize("which", [0, 1])
def test_real_tcp_segments_reach_the_sink_as_tshark_sees_them(tcp_captures: tuple[list[Path], list[bytes]],
                                                               which: int) -> None:
    path = tcp_captures[0][which]
    sink = RecordingSink()
    decoder = PacketDecoder(tcp=sink)
    frames = list(open_capture(str(path)))
    for f in frames:
        decoder(f)
    decoder.finish()
    ref = tshark_fields(path, ("frame.number", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
                               "tcp.dstport", "tcp.seq_raw", "tcp.flags", "tcp.payload"))
    want = []
    for r in ref:
        flags = int(r["tcp.flags"], 16)
        payload = bytes.fromhex(r["tcp.payload"])
        if payload or flags & (TCP_SYN | TCP_FIN | TCP_RST):
            want.append((r["ip.src"] or r["ipv6.src"], int(r["tcp.srcport"]), r["ip.dst"] or r["ipv6.dst"],
                         int(r["tcp.dstport"]), int(r["tcp.seq_raw"]), flags & 0xFF, payload, int(r["frame.number"])))
    got = [(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[10]) for c in sink.calls]
    assert got == want
    assert decoder.stats.tcp == len(frames)
    # the client's bytes, per connection, are the requests as sent
    streams: dict[tuple, bytes] = {}
    for c in sink.calls:
        streams[c[:4]] = streams.get(c[:4], b"") + c[6]
    requests = b"".join(v for v in streams.values() if v.startswith(b"OPTIONS"))
    assert requests == b"".join(tcp_captures[1])


def test_real_tcp_through_the_reassembler(tcp_captures: tuple[list[Path], list[bytes]]) -> None:
    for path in tcp_captures[0]:
        payloads, decoder = decode_all(open_capture(str(path)), PacketDecoder(tcp=TcpReassembler()))
        requests = [p.data for p in payloads if p.data.startswith(b"OPTIONS")]
        assert requests == tcp_captures[1]
        assert sum(p.data.startswith(b"SIP/2.0 200") for p in payloads) == 2
