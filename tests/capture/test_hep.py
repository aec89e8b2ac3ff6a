"""decode_hep on hand-built HEP v1/v2/v3 packets, lying lengths, and random bytes."""

from __future__ import annotations

import socket
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamlog.capture.hep import HepError, HepLog, decode_hep, is_hep
from kamlog.capture.packets import Payload
from kamlog.sources.hep import HepListener

SIP = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nCall-ID: hep-1@test\r\nCSeq: 1 OPTIONS\r\n"
       b"Content-Length: 0\r\n\r\n")


def chunk(ctype: int, value: bytes, vendor: int = 0) -> bytes:
    return struct.pack("!HHH", vendor, ctype, 6 + len(value)) + value


def hep3(*chunks: bytes, total: int | None = None) -> bytes:
    body = b"".join(chunks)
    return b"HEP3" + struct.pack("!H", total if total is not None else 6 + len(body)) + body


def sip_chunks(payload: bytes = SIP, *, ptype: int = 1, proto: int = 17, v6: bool = False) -> list[bytes]:
    if v6:
        addrs = [chunk(1, b"\x0a"), chunk(5, socket.inet_pton(socket.AF_INET6, "2001:db8::1")),
                 chunk(6, socket.inet_pton(socket.AF_INET6, "2001:db8::2"))]
    else:
        addrs = [chunk(1, b"\x02"), chunk(3, socket.inet_aton("10.1.2.3")), chunk(4, socket.inet_aton("10.4.5.6"))]
    return [*addrs, chunk(2, bytes([proto])), chunk(7, struct.pack("!H", 5060)), chunk(8, struct.pack("!H", 5080)),
            chunk(9, struct.pack("!I", 1_700_000_000)), chunk(10, struct.pack("!I", 123_456)),
            chunk(11, bytes([ptype])), chunk(12, struct.pack("!I", 2001)), chunk(15, payload)]


class TestHep3:
    def test_a_sip_packet_becomes_a_payload_with_the_hep_addresses_and_time(self) -> None:
        p = decode_hep(hep3(*sip_chunks()), "cap.pcap", 7)
        assert p == Payload(SIP, 1_700_000_000_123_456_000, 6, "10.1.2.3", 5060, "10.4.5.6", 5080, "udp",
                            "cap.pcap", 7, "hep")

    def test_ipv6_and_tcp_are_read(self) -> None:
        p = decode_hep(hep3(*sip_chunks(v6=True, proto=6)), "f", 1)
        assert isinstance(p, Payload)
        assert (p.src_ip, p.dst_ip, p.transport) == ("2001:db8::1", "2001:db8::2", "tcp")

    def test_a_compressed_payload_is_inflated(self) -> None:
        chunks = sip_chunks()[:-1] + [chunk(16, zlib.compress(SIP))]
        p = decode_hep(hep3(*chunks), "f", 1)
        assert isinstance(p, Payload) and p.data == SIP

    def test_a_zip_bomb_is_an_error(self) -> None:
        chunks = sip_chunks()[:-1] + [chunk(16, zlib.compress(b"\0" * (2 << 20)))]
        with pytest.raises(HepError, match="inflates beyond"):
            decode_hep(hep3(*chunks), "f", 1)

    def test_vendor_and_unknown_chunks_are_skipped_by_length(self) -> None:
        chunks = [chunk(99, b"whatever"), chunk(3, b"\x01\x02", vendor=0x0B), *sip_chunks(), chunk(200, b"")]
        p = decode_hep(hep3(*chunks), "f", 1)
        assert isinstance(p, Payload) and p.src_ip == "10.1.2.3"

    def test_a_log_record_becomes_a_heplog_with_its_correlation_id(self) -> None:
        chunks = sip_chunks("kamlog: caf\xe9 \xff".encode("latin-1"), ptype=100) + [chunk(17, b"call-9@x")]
        log = decode_hep(hep3(*chunks), "hep://127.0.0.1:9060", 3)
        assert log == HepLog(1_700_000_000_123_456_000, "call-9@x", "kamlog: caf\ufffd \ufffd", "10.1.2.3", 5060,
                             "10.4.5.6", 5080, 2001, "hep://127.0.0.1:9060", 3)

    def test_other_types_are_none(self) -> None:
        assert decode_hep(hep3(*sip_chunks(b"rtcp", ptype=5)), "f", 1) is None

    def test_bytes_after_the_total_length_are_ignored(self) -> None:
        packet = hep3(*sip_chunks())
        assert decode_hep(packet + b"trailing junk", "f", 1) == decode_hep(packet, "f", 1)

    @pytest.mark.parametrize("packet, problem", [
        (b"HEP3", "shorter than its 6-byte header"),
        (hep3(total=3), "total length 3"),
        (hep3(chunk(1, b"\x02"), total=500), "total length 500"),
        (hep3(b"\x00\x00\x00\x01\x00\x00"), "length 0, shorter than its 6-byte header"),
        (hep3(b"\x00\x00\x00\x01\x00\x05\x02"), "length 5, shorter"),
        (hep3(b"\x00\x00\x00\x0f\x01\x00abc"), "length 256, beyond the packet end"),
        (hep3(b"\x00\x00\x00\x0f"), "cut off by the packet end"),
        (hep3(chunk(3, b"\x01\x02\x03")), "IPv4 address chunk \\(type 3\\) of 3 bytes"),
        (hep3(chunk(7, b"\x01")), "chunk type 7 holds 1 bytes, not 2"),
        (hep3(*sip_chunks()[:-1]), "no payload chunk"),
        (hep3(*sip_chunks()[:-1], chunk(16, b"not zlib")), "does not inflate"),
        (b"HEP2junk", "not a HEP packet"),
    ])
    def test_lying_lengths_are_errors_naming_the_problem(self, packet: bytes, problem: str) -> None:
        with pytest.raises(HepError, match=problem):
            decode_hep(packet, "f", 1)


class TestHep12:
    def v2(self, payload: bytes = SIP, family: int = 2) -> bytes:
        alen = 4 if family == 2 else 16
        head = struct.pack("!BBBBHH", 2, 8 + 2 * alen, family, 17, 5060, 5080)
        if family == 2:
            addrs = socket.inet_aton("10.1.2.3") + socket.inet_aton("10.4.5.6")
        else:
            addrs = socket.inet_pton(socket.AF_INET6, "::1") * 2
        return head + addrs + struct.pack("<IIHH", 1_700_000_000, 5, 4242, 0) + payload

    def test_v2_reads_its_little_endian_time(self) -> None:
        p = decode_hep(self.v2(), "f", 2)
        assert p == Payload(SIP, 1_700_000_000_000_005_000, 6, "10.1.2.3", 5060, "10.4.5.6", 5080, "udp",
                            "f", 2, "hep")

    def test_v2_over_ipv6(self) -> None:
        p = decode_hep(self.v2(family=10), "f", 2)
        assert isinstance(p, Payload) and p.src_ip == "::1" and p.data == SIP

    def test_v1_has_no_time_and_takes_the_fallback(self) -> None:
        packet = struct.pack("!BBBBHH", 1, 16, 2, 6, 1, 2) + bytes(8) + SIP
        p = decode_hep(packet, "f", 1, fallback_ts_ns=42)
        assert isinstance(p, Payload) and (p.ts_ns, p.transport, p.src_ip, p.data) == (42, "tcp", "0.0.0.0", SIP)

    @pytest.mark.parametrize("packet, problem", [
        (b"\x02\x10\x02", "shorter than its 8-byte header"),
        (struct.pack("!BBBBHH", 2, 16, 2, 17, 1, 2) + bytes(10), "shorter than its 28-byte header"),
        (struct.pack("!BBBBHH", 2, 16, 99, 17, 1, 2) + bytes(30), "unknown address family 99"),
    ])
    def test_short_or_unknown_headers_are_errors(self, packet: bytes, problem: str) -> None:
        with pytest.raises(HepError, match=problem):
            decode_hep(packet, "f", 1)

    def test_is_hep_tells_hep_from_sip(self) -> None:
        assert is_hep(hep3(*sip_chunks())) and is_hep(self.v2())
        assert not is_hep(SIP)


class TestHostileHep:
    @settings(max_examples=1000, deadline=None)
    @given(st.binary(max_size=400))
    def test_random_bytes_give_a_result_or_a_hep_error(self, data: bytes) -> None:
        for packet in (data, b"HEP3" + data, b"\x02" + data, b"\x01" + data):
            try:
                decode_hep(packet, "f", 1)
            except HepError:
                pass

    @settings(max_examples=1000, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, len(hep3(*sip_chunks())) - 1), st.integers(0, 255)), max_size=6),
           st.integers(0, 40))
    def test_mutated_packets_give_a_result_or_a_hep_error(self, flips: list[tuple[int, int]], cut: int) -> None:
        packet = bytearray(hep3(*sip_chunks(), chunk(17, b"cid")))
        for at, value in flips:
            packet[at] = value
        try:
            decode_hep(bytes(packet[:len(packet) - cut]), "f", 1)
        except HepError:
            pass


class TestHepListener:
    def test_it_reports_its_port_and_counts_bad_datagrams(self) -> None:
        with HepListener(0) as listener:
            assert listener.port > 0 and listener.file == f"hep://127.0.0.1:{listener.port}"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for packet in (hep3(*sip_chunks()), b"not hep at all", hep3(total=9),
                               hep3(*sip_chunks(b"x", ptype=5)), hep3(*sip_chunks(b"log", ptype=100))):
                    s.sendto(packet, ("127.0.0.1", listener.port))
            got: list[Payload | HepLog] = []
            for _ in range(20):
                got += listener.receive(0.2)
                if listener.counters.datagrams == 5:
                    break
            assert [type(r).__name__ for r in got] == ["Payload", "HepLog"]
            assert [r.frame for r in got] == [1, 5]
            c = listener.counters
            assert (c.datagrams, c.sip, c.logs, c.other_types, c.bad) == (5, 1, 1, 1, 2)
            assert "total length 9" in listener.last_error
        assert listener.receive(0.01) == []

    def test_receive_returns_empty_after_its_timeout(self) -> None:
        with HepListener(0) as listener:
            assert listener.receive(0.05) == []
