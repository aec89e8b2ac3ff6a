"""A real Kamailio 5.6 with siptrace mirroring its SIP traffic (UDP and TCP) over HEP to
HepListener, and sending hlog() records; the same run captured by tcpdump, whose HEP datagrams
and TCP segments are decoded from the file and compared with what the listener received."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from kamlog.capture.hep import HepLog, decode_hep
from kamlog.capture.packets import Payload
from kamlog.capture.tcp import TcpReassembler
from kamlog.sources.hep import HepListener
from kamlog.sources.pcap import CaptureReader
from tests.capture.realcap import pcap_ipv4
from tests.cli_helpers import kamlog
from tests.corpus.runners import LOOPBACK, Kamailio, Tcpdump, wait_for

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "data_hep" / "kamailio-hep.cfg"

pytestmark = [
    pytest.mark.realworld,
    pytest.mark.skipif(shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists(),
                       reason="needs Kamailio"),
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump"),
]


def options(call_id: str, port: int, transport: str, sip_port: int, cseq: int = 1) -> bytes:
    return (f"OPTIONS sip:{LOOPBACK}:{sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {LOOPBACK}:{port};branch=z9hG4bK-{call_id.split('@')[0]}-{cseq}\r\n"
            f"From: <sip:kamlog@kamlog.test>;tag=t{cseq}\r\nTo: <sip:{LOOPBACK}:{sip_port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def call_id(data: bytes) -> str:
    m = re.search(rb"\r\nCall-ID:[ \t]*([^\r\n]+)", data, re.IGNORECASE)
    assert m is not None, data[:200]
    return m[1].decode()


def first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()


def read_replies(sock: socket.socket, count: int) -> bytes:
    buf = b""
    deadline = time.monotonic() + 10
    while buf.count(b"SIP/2.0 200") < count and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


@pytest.mark.parametrize("hep_version", [3, 2])
class TestKamailioHep:
    def test_the_listener_and_the_capture_see_what_kamailio_traced(self, tmp_path: Path, hep_version: int) -> None:
        template = tmp_path / "kamailio-hep.cfg"
        with HepListener(0) as listener:
            template.write_text(TEMPLATE.read_text().replace("@@HEP_PORT@@", str(listener.port))
                                .replace("@@HEP_VERSION@@", str(hep_version)))
            kamailio = Kamailio(tmp_path, debug=2, config_template=template)
            pcap = tmp_path / "hep.pcap"
            records: list[Payload | HepLog] = []
            with Tcpdump(tmp_path, pcap, [listener.port, kamailio.sip_port], protocols="udp or tcp"), kamailio:
                sip_port = kamailio.sip_port
                udp_ids = [f"hep-udp-{i}-v{hep_version}@kamlog.test" for i in range(3)]
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((LOOPBACK, 0))
                    udp.settimeout(10)
                    udp_port = udp.getsockname()[1]
                    for cid in udp_ids:
                        udp.sendto(options(cid, udp_port, "UDP", sip_port), (LOOPBACK, sip_port))
                        assert udp.recv(65536).startswith(b"SIP/2.0 200 Alive")

                tcp_ids = [f"hep-tcp-{i}-v{hep_version}@kamlog.test" for i in range(4)]
                tcp = socket.create_connection((LOOPBACK, sip_port), timeout=10)
                with tcp:
                    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    tcp_port = tcp.getsockname()[1]
                    msgs = [options(cid, tcp_port, "TCP", sip_port, i + 1) for i, cid in enumerate(tcp_ids)]
                    for i in range(0, len(msgs[0]), 41):  # one request in many segments
                        tcp.sendall(msgs[0][i:i + 41])
                        time.sleep(0.003)
                    tcp.sendall(msgs[1] + msgs[2][:60])  # one and a bit
                    time.sleep(0.01)
                    tcp.sendall(msgs[2][60:] + b"\r\n\r\n" + msgs[3])  # the rest, a keep-alive, one more
                    replies = read_replies(tcp, 4)
                assert replies.count(b"SIP/2.0 200 Alive") == 4

                # 7 requests, 7 replies and 7 hlog records
                def arrived() -> bool:
                    records.extend(listener.receive(0.1))
                    return len(records) >= 21
                wait_for(arrived, timeout=15, what="21 HEP records from Kamailio")
                time.sleep(0.3)
                records.extend(listener.receive(0.1))

        sips = [r for r in records if isinstance(r, Payload)]
        logs = [r for r in records if isinstance(r, HepLog)]
        assert listener.counters.bad == 0 and listener.counters.other_types == 0
        assert len(sips) == 14 and len(logs) == 7

        for cid in udp_ids + tcp_ids:
            mine = [p for p in sips if call_id(p.data) == cid]
            transport = "udp" if "udp" in cid else "tcp"
            client_port = udp_port if transport == "udp" else tcp_port
            assert sorted(first_line(p.data) for p in mine) == [f"OPTIONS sip:{LOOPBACK}:{sip_port} SIP/2.0",
                                                               "SIP/2.0 200 Alive"]
            for p in mine:
                assert (p.transport, p.via, p.digits) == (transport, "hep", 6)
                ends = {(p.src_ip, p.src_port), (p.dst_ip, p.dst_port)}
                assert ends == {(LOOPBACK, client_port), (LOOPBACK, sip_port)}
                request = p.data.startswith(b"OPTIONS")
                assert p.dst_port == (sip_port if request else client_port)
                assert abs(p.ts_ns - time.time_ns()) < 120 * 10**9
            log = next(g for g in logs if g.correlation_id == cid)
            assert log.message == f"kamlog hlog: OPTIONS from {LOOPBACK}:{client_port}"
            assert log.capture_id == 4242 and log.file == listener.file
        assert sorted(r.frame for r in records) == list(range(1, 22))

        # The capture of the same run: its HEP datagrams decode to the same records ...
        frames = list(pcap_ipv4(pcap))
        from_file = [decode_hep(data, str(pcap), n) for n, _, proto, _, _, _, dport, _, _, data in frames
                     if proto == 17 and dport == listener.port]
        strip = lambda r: r._replace(file="", frame=0)  # noqa: E731
        # (in the same order but for datagrams two Kamailio processes sent at the same moment,
        # which the socket and the capture may see in either order)
        assert sorted((strip(r) for r in from_file if r is not None), key=repr) == sorted(map(strip, records), key=repr)
        # kamlog's capture reader finds the same HEP records in the file: the SIP messages the
        # HEP datagrams carry (beside the TCP/UDP SIP the capture also holds), and the log records.
        reader = CaptureReader([str(pcap)])
        hep_sip = [r for r in reader.records() if isinstance(r, HepLog) or r.payload.via == "hep"]
        assert sorted((strip(r) if isinstance(r, HepLog) else strip(r.payload) for r in hep_sip), key=repr) == \
            sorted((strip(r) for r in records), key=repr)
        # `kamlog messages` prints those log records as log events beside the SIP messages.
        shown = [json.loads(line) for line in kamlog("messages", "--format", "json", str(pcap)).stdout.splitlines()]
        assert sorted((d["sip.call_id"], d["message"]) for d in shown if d["event.dataset"] == "kamailio.log") == \
            sorted((r.correlation_id, r.message) for r in logs)
        # `kamlog correlate` puts each hlog() record on the call its correlation id names.
        done = kamlog("correlate", "--format", "json", str(pcap))
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        placed = [(d["kamlog.call"], d["message"], d["kamlog.attribution"], d["kamlog.capture.via"])
                  for d in events if d["event.dataset"] == "kamailio.log"]
        assert sorted(placed) == sorted((r.correlation_id, r.message, "call_id", "hep") for r in logs)

        # ... and the SIP framed out of its TCP segments is, byte for byte, what Kamailio traced.
        reassembler = TcpReassembler()
        framed: list[Payload] = []
        for n, ts, proto, src, sport, dst, dport, seq, flags, data in frames:
            if proto == 6:
                framed += reassembler.segment(src, sport, dst, dport, seq, flags, data, ts, 6, str(pcap), n)
        framed += reassembler.flush()
        traced_tcp = [p for p in sips if p.transport == "tcp"]
        # Kamailio's TCP workers trace each message as they handle it: the HEP datagrams of one
        # connection may arrive in another order than its bytes went on the wire.
        for direction in (sip_port, tcp_port):
            assert sorted((p.data, p.src_port, p.dst_port) for p in framed if p.dst_port == direction) == \
                sorted((p.data, p.src_port, p.dst_port) for p in traced_tcp if p.dst_port == direction)
        assert len(framed) == len(traced_tcp) == 8
        # Our CRLFCRLF ping, and the CRLF pong Kamailio answers it with (RFC 5626).
        assert reassembler.counters.keepalives == 2 and reassembler.counters.skipped_bytes == 0
