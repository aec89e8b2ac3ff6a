"""PacketDecoder: every link type read, compared with tshark's dissection of the same file; IP
fragments in every order, duplicated and overlapping, IPv4 and IPv6, against tshark's
reassembly; incomplete datagrams reported with their frames; the fast path equal to the general
one; TCP segments handed to the TCP sink as the interface says."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamlog.capture.decode import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, PacketDecoder, TcpSink
from kamlog.capture.link import LINK_TRUNCATED, LINK_UNKNOWN, link_ip
from kamlog.capture.packets import Frame, Payload
from kamlog.capture.tcp import TcpReassembler
from tests.capture.packets import (
    ethernet, ext_header, fragment_ipv4, fragment_ipv6, ipv4, ipv4_udp, ipv6, ipv6_udp, tcp, udp,
)
from tests.capture.realcap import assert_same_as_tshark, decode_all, need, pcap_bytes, sip_text

T0 = 1_795_871_464_000_000_000


def frame(data: bytes, linktype: int = 1, number: int = 1, ts: int = T0, wire: int | None = None,
          file: str = "t.pcap") -> Frame:
    return Frame(file, number, ts, 6, linktype, data, len(data) if wire is None else wire)


def write_pcap(tmp_path: Path, name: str, frames: list[bytes], linktype: int = 1, step_us: int = 1000,
               snaplen: int = 262144) -> Path:
    path = tmp_path / name
    path.write_bytes(pcap_bytes([(T0 + i * step_us * 1000, f[:snaplen], len(f)) for i, f in enumerate(frames)],
                                linktype, snaplen=snaplen))
    return path


V4 = ipv4_udp("192.0.2.10", "198.51.100.7", 5060, 5080, sip_text("link-v4@kamlog.test"))
V6 = ipv6_udp("2001:db8::10", "2001:db8::7", 5060, 5080, sip_text("link-v6@kamlog.test"))


# ---------------------------------------------------------------------------------------------
# link types


def nflog(ip: bytes, family: int, order: str = "<") -> bytes:
    def tlv(kind: int, value: bytes) -> bytes:
        return struct.pack(order + "HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)

    hw = 0x0800 if family == 2 else 0x86DD
    return (bytes([family, 0]) + struct.pack("!H", 7) + tlv(1, struct.pack("!HBx", hw, 3))
            + tlv(10, b"kamlog\0") + tlv(9, ip))


def sll(ip: bytes) -> bytes:
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, et) + ip


def sll2(ip: bytes) -> bytes:
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHIHBB8s", et, 0, 1, 772, 0, 6, b"\0" * 8) + ip


LINKS = {
    # name: (linktype, build(ip) -> frame)
    "ethernet": (1, ethernet),
    "802.1Q": (1, lambda ip: ethernet(ip, tags=(0x8100,))),
    "QinQ 802.1ad": (1, lambda ip: ethernet(ip, tags=(0x88A8, 0x8100))),
    "QinQ 0x9100": (1, lambda ip: ethernet(ip, tags=(0x9100, 0x8100))),
    "802.3 LLC/SNAP": (1, lambda ip: ethernet(
        b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", 0x0800 if ip[0] >> 4 == 4 else 0x86DD) + ip,
        ethertype=len(ip) + 8)),
    "Linux cooked v1": (113, sll),
    "Linux cooked v2": (276, sll2),
    "BSD NULL, little-endian writer": (0, lambda ip: struct.pack("<I", 2 if ip[0] >> 4 == 4 else 30) + ip),
    "BSD NULL, big-endian writer": (0, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 24) + ip),
    "BSD NULL, FreeBSD AF_INET6": (0, lambda ip: struct.pack("<I", 2 if ip[0] >> 4 == 4 else 28) + ip),
    "OpenBSD LOOP": (108, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 24) + ip),
    "raw IP (101)": (101, lambda ip: ip),
    "raw IP (DLT 12)": (12, lambda ip: ip),
    "raw IP (DLT 14)": (14, lambda ip: ip),
    "NFLOG": (239, lambda ip: nflog(ip, 2 if ip[0] >> 4 == 4 else 10)),
}


@need("tshark")
@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_types_read_as_tshark_reads_them(tmp_path: Path, name: str) -> None:
    linktype, build = LINKS[name]
    path = write_pcap(tmp_path, "link.pcap", [build(V4), build(V6), build(V4)], linktype)
    _, payloads = assert_same_as_tshark(path)
    assert [p.src_ip for p in payloads] == ["192.0.2.10", "2001:db8::10", "192.0.2.10"]


@need("tshark")
@pytest.mark.parametrize("linktype,ip", [(228, V4), (229, V6)])
def test_ip_only_link_types(tmp_path: Path, linktype: int, ip: bytes) -> None:
    _, payloads = assert_same_as_tshark(write_pcap(tmp_path, "ip.pcap", [ip, ip], linktype))
    assert len(payloads) == 2


def test_nflog_tlvs_in_big_endian() -> None:
    out = PacketDecoder()(frame(nflog(V6, 10, ">"), 239))
    assert out and out[0].src_ip == "2001:db8::10"


def test_non_ip_and_unknown_link_types_are_counted() -> None:
    decoder = PacketDecoder()
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    lldp = b"\x01\x80\xc2\x00\x00\x0e" + b"\x02" * 6 + b"\x88\xcc" + bytes(30)
    assert decoder(frame(arp)) == [] and decoder(frame(lldp)) == []
    assert decoder(frame(V4, linktype=147)) == []  # LINKTYPE_USER0
    assert decoder(frame(b"\x02\x00", linktype=1)) == []  # a cut Ethernet header
    decoder.finish()
    s = decoder.stats
    assert (s.frames, s.non_ip, s.truncated, s.bad_headers) == (4, 3, 0, 1)
    assert s.unknown_linktypes == {147: 1}
    assert any("link type 147" in n for n in decoder.notes())
    assert link_ip(1, b"\x00" * 13) == (LINK_TRUNCATED, -1)
    assert link_ip(9999, V4) == (LINK_UNKNOWN, -1)


# ---------------------------------------------------------------------------------------------
# IP details


def test_ipv4_options_and_trailing_ethernet_padding() -> None:
    payload = b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    packet = ipv4("10.1.1.1", "10.1.1.2", 17, udp("10.1.1.1", "10.1.1.2", 1, 2, payload),
                  options=b"\x94\x04\x00\x00")  # router alert
    [p] = PacketDecoder()(frame(ethernet(packet) + b"\0" * 20))
    assert p.data == payload and (p.src_port, p.dst_port) == (1, 2)


def test_ipv6_extension_headers_before_udp() -> None:
    payload = sip_text("ext@kamlog.test")
    hop = ext_header(60)  # hop-by-hop, then destination options, then routing, then UDP
    dest = ext_header(43)
    routing = ext_header(17)
    packet = ipv6_udp("fd00::1", "fd00::2", 5060, 5061, payload, extensions=hop + dest + routing, first_nh=0)
    [p] = PacketDecoder()(frame(ethernet(packet)))
    assert p.data == payload and p.dst_ip == "fd00::2"


def test_udp_length_shorter_than_the_ip_packet_trims_the_payload() -> None:
    body = udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"SIP/2.0 200 OK\r\n\r\n")
    packet = ipv4("10.0.0.1", "10.0.0.2", 17, body + b"junk after the datagram")
    for fast in (True, False):
        [p] = PacketDecoder(fast=fast)(frame(ethernet(packet)))
        assert p.data == b"SIP/2.0 200 OK\r\n\r\n"


def test_lying_lengths_are_bad_headers_and_snaplen_cuts_are_not() -> None:
    body = udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"x" * 100)
    too_long = ipv4("10.0.0.1", "10.0.0.2", 17, body, total=400)  # says 400, has 128
    decoder = PacketDecoder()
    assert decoder(frame(ethernet(too_long))) == []  # not cut: the length lies
    assert decoder.stats.bad_headers == 1
    full = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, body))
    [p] = decoder(frame(full[:80], wire=len(full)))  # cut by a snapshot length of 80
    assert p.data == b"x" * (80 - 42) and decoder.stats.cut_payloads == 1
    assert decoder(frame(full[:30], wire=len(full))) == []  # cut inside the IP header
    assert decoder.stats.truncated == 1
    bad_udp = bytearray(full)
    struct.pack_into("!H", bad_udp, 14 + 20 + 4, 3)  # UDP length 3 < 8
    assert decoder(frame(bytes(bad_udp))) == [] and decoder.stats.bad_headers == 2
    wrong_version = bytearray(full)
    wrong_version[14] = 0x65
    assert decoder(frame(bytes(wrong_version))) == [] and decoder.stats.bad_headers == 3


def test_ipv4_total_length_zero_is_segmentation_offload() -> None:
    body = udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"INVITE sip:x SIP/2.0\r\n\r\n")
    packet = ipv4("10.0.0.1", "10.0.0.2", 17, body, total=0)
    [p] = PacketDecoder()(frame(ethernet(packet)))
    assert p.data == b"INVITE sip:x SIP/2.0\r\n\r\n"


def test_other_transports_are_counted() -> None:
    decoder = PacketDecoder()
    icmp = ipv4("10.0.0.1", "10.0.0.2", 1, b"\x08\x00" + bytes(30))
    sctp = ipv4("10.0.0.1", "10.0.0.2", 132, bytes(40))
    assert decoder(frame(ethernet(icmp))) == [] and decoder(frame(ethernet(sctp))) == []
    assert (decoder.stats.other_l4, decoder.stats.sctp) == (2, 1)
    assert any("SCTP" in n for n in decoder.notes())


# ---------------------------------------------------------------------------------------------
# fragments


BIG_V4 = ipv4_udp("169.254.10.1", "169.254.10.2", 5060, 5060, sip_text("frag-v4@kamlog.test", body=3900, method="INVITE"))
BIG_V6 = ipv6_udp("fd00:10::1", "fd00:10::2", 5060, 5060, sip_text("frag-v6@kamlog.test", body=3900, method="INVITE"))


def reassemble(fragments: list[bytes], **kw) -> tuple[list[Payload], PacketDecoder]:
    frames = [frame(ethernet(f), number=i + 1, ts=T0 + i * 1000) for i, f in enumerate(fragments)]
    return decode_all(frames, PacketDecoder(**kw))


ORDERS = {
    "in order": lambda fs: fs,
    "reversed": lambda fs: fs[::-1],
    "last first": lambda fs: fs[-1:] + fs[:-1],
    "shuffled": lambda fs: random.Random(7).sample(fs, len(fs)),
    "duplicated": lambda fs: [f for f in fs for _ in range(2)],
    "first again at the end": lambda fs: fs + fs[:1],
}


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("version", [4, 6])
def test_fragments_in_any_order(version: int, order: str) -> None:
    big = BIG_V4 if version == 4 else BIG_V6
    fragments = fragment_ipv4(big) if version == 4 else fragment_ipv6(big)
    assert len(fragments) == 3
    sent = ORDERS[order](fragments)
    payloads, decoder = reassemble(sent)
    [p] = payloads
    assert p.data == sip_text(f"frag-v{version}@kamlog.test", body=3900, method="INVITE")
    assert (p.src_port, p.dst_port, p.transport) == (5060, 5060, "udp")
    # It completes with the frame that brought the last missing fragment; parts name the others.
    complete_at = next(i + 1 for i in range(len(sent)) if set(sent[: i + 1]) >= set(fragments))
    assert p.frame == complete_at
    assert set(p.parts) | {p.frame} >= set(range(1, complete_at + 1)) - {i + 1 for i in range(complete_at) if sent[i] in sent[:i]}
    s = decoder.stats
    assert (s.reassembled, s.udp, s.incomplete_fragment_sets) == (1, 1, 0)
    assert decoder.notes() == []


@need("tshark")
@pytest.mark.parametrize("order", ["in order", "shuffled", "duplicated"])
def test_fragment_reassembly_agrees_with_tshark(tmp_path: Path, order: str) -> None:
    fragments = []
    for i, big in enumerate((BIG_V4, BIG_V6)):
        fragments += fragment_ipv4(big) if i == 0 else fragment_ipv6(big, unfragmentable=0)
    # and a v6 datagram whose fragmentable part starts with a destination options header
    with_dest = ipv6_udp("fd00:10::1", "fd00:10::3", 5062, 5060, sip_text("frag-dest@kamlog.test", body=3000),
                         extensions=ext_header(17), first_nh=60)
    fragments += fragment_ipv6(with_dest, ident=99)
    sent = ORDERS[order](fragments)
    path = write_pcap(tmp_path, "frags.pcap", [ethernet(f) for f in sent])
    _, payloads = assert_same_as_tshark(path)
    assert len(payloads) == 3


def test_overlapping_fragments_first_captured_bytes_win() -> None:
    """The same datagram fragmented at two MTUs, fragments of both mixed: it completes once, with
    its bytes."""
    a = fragment_ipv4(BIG_V4, mtu=1500)
    b = fragment_ipv4(BIG_V4, mtu=1000)
    [p], decoder = reassemble([a[0], b[1], b[2], b[3], a[2]])
    assert p.data == sip_text("frag-v4@kamlog.test", body=3900, method="INVITE")
    # conflicting bytes in an overlap: the fragment captured first wins
    forged = bytearray(b[1])
    forged[-10:] = b"XXXXXXXXXX"
    forged = ipv4("169.254.10.1", "169.254.10.2", 17, bytes(forged[20:]), ident=struct.unpack("!H", b[1][4:6])[0],
                  flags=0x2000, offset=(struct.unpack("!H", b[1][6:8])[0] & 0x1FFF) * 8)
    [first], _ = reassemble([a[0], a[1], forged, a[2]])
    assert first.data == p.data


def test_interleaved_datagrams_with_the_same_addresses() -> None:
    one = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"A" * 3000, ident=1)
    two = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"B" * 3000, ident=2)
    f1, f2 = fragment_ipv4(one), fragment_ipv4(two)
    payloads, _ = reassemble([f1[0], f2[0], f2[1], f1[1], f2[2], f1[2]])
    assert [p.data for p in payloads] == [b"B" * 3000, b"A" * 3000]
    assert [p.parts for p in payloads] == [(2, 3), (1, 4)]


def test_only_first_fragments_are_reported_incomplete_with_their_frames() -> None:
    """What `tcpdump udp port 5060` keeps of fragmented datagrams: the first fragments only."""
    firsts = []
    for i in range(3):
        big = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, sip_text(f"first-{i}@kamlog.test", body=3000))
        firsts.append(fragment_ipv4(big)[0])
    whole = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"SIP/2.0 200 OK\r\n\r\n")
    payloads, decoder = reassemble([firsts[0], whole, firsts[1], firsts[2]])
    assert [p.data for p in payloads] == [b"SIP/2.0 200 OK\r\n\r\n"]
    assert decoder.stats.incomplete_fragment_sets == 3
    [note] = decoder.notes()
    assert note.startswith("3 fragmented datagrams incomplete")
    assert "port" in note and "t.pcap frames 1, 3, 4" in note


def test_incomplete_sets_expire_by_capture_time() -> None:
    big = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"x" * 3000, ident=5)
    f = fragment_ipv4(big)
    decoder = PacketDecoder(fragment_timeout_s=30)
    decoder(frame(ethernet(f[0]), number=1, ts=T0))
    decoder(frame(ethernet(f[1]), number=2, ts=T0 + 10 * 10**9))
    assert decoder.reassembler.pending == 1
    # 31 s later the set is given up: the last fragment alone starts a new, incomplete set
    assert decoder(frame(ethernet(f[2]), number=3, ts=T0 + 31 * 10**9)) == []
    assert decoder.stats.incomplete_fragment_sets == 1
    decoder.finish()
    assert decoder.stats.incomplete_fragment_sets == 2
    assert [i.reason for i in decoder.reassembler.incomplete] == ["timeout", "end of capture"]


def test_pending_fragments_are_bounded() -> None:
    decoder = PacketDecoder()
    decoder.reassembler.max_sets = 100
    for i in range(1000):
        big = ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5060, b"x" * 3000, ident=i)
        decoder(frame(ethernet(fragment_ipv4(big)[0]), number=i + 1, ts=T0 + i))
        assert decoder.reassembler.pending <= 101
    decoder.finish()
    assert decoder.stats.incomplete_fragment_sets == 1000
    assert {i.reason for i in decoder.reassembler.incomplete} == {"too many pending", "end of capture"}


def test_a_duplicate_fragment_after_completion_is_not_a_new_set() -> None:
    """tcpdump -i any sees a bridged datagram on two interfaces: fragment 3 arrives again after
    the datagram completed."""
    f = fragment_ipv4(BIG_V4)
    payloads, decoder = reassemble([f[0], f[0], f[1], f[1], f[2], f[2]])
    assert len(payloads) == 1 and decoder.stats.incomplete_fragment_sets == 0
    assert decoder.stats.duplicate_fragments == 3


def test_a_fragment_cut_by_the_snapshot_length_leaves_its_datagram_incomplete() -> None:
    f = fragment_ipv4(BIG_V4)
    frames = [frame(ethernet(x), number=i + 1) for i, x in enumerate(f)]
    cut = frames[1]._replace(data=frames[1].data[:200])
    payloads, decoder = decode_all([frames[0], cut, frames[2]])
    assert payloads == [] and decoder.stats.truncated == 1 and decoder.stats.fragments == 2
    assert decoder.stats.incomplete_fragment_sets == 1


def test_fragments_across_rotated_files_name_their_own_file_parts_only() -> None:
    f = fragment_ipv4(BIG_V4)
    frames = [frame(ethernet(f[0]), file="a.pcap", number=9), frame(ethernet(f[1]), file="b.pcap", number=1),
              frame(ethernet(f[2]), file="b.pcap", number=2)]
    [p], _ = decode_all(frames)
    assert (p.file, p.frame, p.parts) == ("b.pcap", 2, (1,))


# ---------------------------------------------------------------------------------------------
# the fast path is the general path


def _mutated(seed: int, base: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(base)
    for pos, value in flips:
        data[pos % len(data)] = value
    return bytes(data[: max(0, len(data) - cut)])


BASES = [ethernet(V4), sll2(V4), sll(V4), ethernet(V6), ethernet(fragment_ipv4(BIG_V4)[1]),
         ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, TCP_ACK | TCP_PSH, b"SIP")))]
LINKTYPE_OF = {0: 1, 1: 276, 2: 113, 3: 1, 4: 1, 5: 1}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BASES) - 1),
       st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=4),
       st.integers(0, 60), st.booleans())
def test_fast_path_equals_general_path(which: int, flips: list[tuple[int, int]], cut: int, snapped: bool) -> None:
    base = BASES[which]
    data = _mutated(which, base, flips, cut)
    f = frame(data, LINKTYPE_OF[which], wire=len(base) if snapped else len(data))
    fast, general = PacketDecoder(fast=True), PacketDecoder(fast=False)
    assert fast(f) == general(f)
    assert fast.stats == general.stats
    # With a TCP sink, the segments the fast path hands over are those the general path does.
    sinks = RecordingSink(), RecordingSink()
    fast, general = PacketDecoder(tcp=sinks[0], fast=True), PacketDecoder(tcp=sinks[1], fast=False)
    assert fast(f) == general(f)
    assert fast.stats == general.stats and sinks[0].calls == sinks[1].calls
    s = fast.stats
    assert s.frames == s.non_ip + s.truncated + s.bad_headers + s.udp + s.tcp + s.other_l4 + s.fragments - s.reassembled


# ---------------------------------------------------------------------------------------------
# TCP hand-off


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.flushed = 0

    def segment(self, src_ip: str, src_port: int, dst_ip: str, dst_port: int, seq: int, flags: int,
                data: bytes, ts_ns: int, digits: int, file: str, frame: int) -> list[Payload]:
        self.calls.append((src_ip, src_port, dst_ip, dst_port, seq, flags, data, ts_ns, digits, file, frame))
        return []

    def flush(self) -> list[Payload]:
        self.flushed += 1
        return []


def test_tcp_segments_go_to_the_sink() -> None:
    sink = RecordingSink()
    sink_typed: TcpSink = sink  # the recording sink satisfies the protocol
    decoder = PacketDecoder(tcp=sink_typed)
    a, b = "10.0.0.1", "10.0.0.2"
    segments = [
        ethernet(ipv4(a, b, 6, tcp(40000, 5060, 1000, TCP_SYN))),
        ethernet(ipv4(b, a, 6, tcp(5060, 40000, 7000, TCP_SYN | TCP_ACK, ack=1001))),
        ethernet(ipv4(a, b, 6, tcp(40000, 5060, 1001, TCP_ACK, ack=7001))),  # pure ACK: not passed on
        ethernet(ipv4(a, b, 6, tcp(40000, 5060, 1001, TCP_ACK | TCP_PSH, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))),
        ethernet(ipv6_tcp := ipv6("fd00::1", "fd00::2", 6, tcp(40001, 5060, 5, TCP_ACK | TCP_PSH, b"BYE"))),
        ethernet(ipv4(a, b, 6, tcp(40000, 5060, 1026, TCP_FIN | TCP_ACK))),
        ethernet(ipv4(b, a, 6, tcp(5060, 40000, 7001, TCP_RST))),
    ]
    assert ipv6_tcp
    for i, s in enumerate(segments):
        assert decoder(frame(s, number=i + 1, ts=T0 + i)) == []
    assert decoder.finish() == [] and sink.flushed == 1
    assert [(c[0], c[1], c[4], c[5], c[6], c[10]) for c in sink.calls] == [
        (a, 40000, 1000, TCP_SYN, b"", 1),
        (b, 5060, 7000, TCP_SYN | TCP_ACK, b"", 2),
        (a, 40000, 1001, TCP_ACK | TCP_PSH, b"OPTIONS sip:x SIP/2.0\r\n\r\n", 4),
        ("fd00::1", 40001, 5, TCP_ACK | TCP_PSH, b"BYE", 5),
        (a, 40000, 1026, TCP_FIN | TCP_ACK, b"", 6),
        (b, 5060, 7001, TCP_RST, b"", 7),
    ]
    assert all(c[7] == T0 + c[10] - 1 and c[8] == 6 and c[9] == "t.pcap" for c in sink.calls)
    assert decoder.stats.tcp == 7


def test_without_a_sink_tcp_is_counted_and_skipped() -> None:
    decoder = PacketDecoder()
    s = ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 5060, 1, TCP_ACK | TCP_PSH, b"INVITE")))
    assert decoder(frame(s)) == []
    assert (decoder.stats.tcp, decoder.stats.tcp_skipped) == (1, 1)
    assert any("TCP" in n for n in decoder.notes())


def test_tcp_reassembler_behind_the_decoder() -> None:
    """With kamlog's TCP reassembler as the sink, a SIP message split over three segments comes
    out whole."""
    message = sip_text("tcp-join@kamlog.test", body=500)
    a, b = "10.0.0.1", "10.0.0.2"
    pieces = [message[:100], message[100:400], message[400:]]
    frames = [frame(ethernet(ipv4(a, b, 6, tcp(40000, 5060, 1, TCP_SYN))), number=1)]
    seq = 2
    for i, piece in enumerate(pieces):
        frames.append(frame(ethernet(ipv4(a, b, 6, tcp(40000, 5060, seq, TCP_ACK | TCP_PSH, piece))), number=i + 2))
        seq += len(piece)
    payloads, _ = decode_all(frames, PacketDecoder(tcp=TcpReassembler()))
    assert [p.data for p in payloads] == [message]
    assert payloads[0].transport == "tcp"
