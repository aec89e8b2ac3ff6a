"""TcpReassembler on hand-made segment sequences: every edge case of ordering and SIP framing."""

from __future__ import annotations


from hypothesis import given, settings
from hypothesis import strategies as st

from kamlog.capture.packets import Payload
from kamlog.capture.tcp import ACK, FIN, RST, SYN, TcpReassembler
from kamlog.capture.websocket import OP_BINARY, OP_CONTINUATION, OP_PING, build_frame

A, B = ("10.0.0.1", 5060), ("10.0.0.2", 40000)


def sip(n: int, body: bytes = b"", *, length: str | None = "Content-Length", method: str = "OPTIONS") -> bytes:
    head = (f"{method} sip:bob@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2:40000;branch=z9hG4bK{n}\r\n"
            f"Call-ID: call-{n}@test\r\nCSeq: {n} {method}\r\n").encode()
    if length is not None:
        head += f"{length}: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


def reply(n: int) -> bytes:
    return (f"SIP/2.0 200 OK\r\nCall-ID: call-{n}@test\r\nCSeq: {n} OPTIONS\r\nl: 0\r\n\r\n").encode()


class Feeder:
    """Feeds segments of one direction (B -> A) with a running frame number and clock."""

    def __init__(self, isn: int = 1000, *, syn: bool = True, tcp: TcpReassembler | None = None) -> None:
        self.tcp = tcp or TcpReassembler()
        self.frame = 0
        self.isn = isn
        self.out: list[Payload] = []
        if syn:
            self.send(b"", seq=isn, flags=SYN)
            self.next = (isn + 1) & 0xFFFFFFFF
        else:
            self.next = isn

    def send(self, data: bytes, *, seq: int | None = None, flags: int = ACK, ts: float | None = None) -> list[Payload]:
        self.frame += 1
        if seq is None:
            seq = self.next
            self.next = (self.next + len(data)) & 0xFFFFFFFF
        got = self.tcp.segment(B[0], B[1], A[0], A[1], seq, flags, data,
                               int((ts if ts is not None else self.frame) * 1e9), 6, "t.pcap", self.frame)
        self.out += got
        return got

    def seq_at(self, offset: int) -> int:
        return (self.isn + 1 + offset) & 0xFFFFFFFF

    def datas(self) -> list[bytes]:
        return [p.data for p in self.out]


class TestFraming:
    def test_one_message_in_one_segment_is_one_payload(self) -> None:
        f = Feeder()
        got = f.send(sip(1, b"v=0\r\n"))
        assert [p.data for p in got] == [sip(1, b"v=0\r\n")]
        p = got[0]
        assert (p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.transport) == (*B, *A, "tcp")
        assert (p.frame, p.parts, p.file, p.ts_ns, p.digits) == (2, (), "t.pcap", 2_000_000_000, 6)

    def test_a_message_split_across_segments_names_the_completing_frame_and_its_parts(self) -> None:
        f = Feeder()
        msg = sip(1, b"x" * 300)
        for i in range(0, len(msg), 50):
            f.send(msg[i:i + 50])
        assert f.datas() == [msg]
        assert f.out[0].frame == f.frame
        assert f.out[0].parts == tuple(range(2, f.frame))

    def test_two_messages_and_a_half_in_one_segment(self) -> None:
        f = Feeder()
        m1, m2, m3 = sip(1, b"abc"), reply(2), sip(3, b"body3")
        got = f.send(m1 + m2 + m3[:20])
        assert [p.data for p in got] == [m1, m2]
        assert all(p.parts == () for p in got)
        got = f.send(m3[20:])
        assert [p.data for p in got] == [m3]
        assert got[0].parts == (2,)

    def test_the_compact_content_length_is_understood_in_any_case(self) -> None:
        f = Feeder()
        msgs = [sip(1, b"12345", length="l"), sip(2, b"678", length="CONTENT-LENGTH"), sip(3, b"9", length="L")]
        f.send(b"".join(msgs))
        assert f.datas() == msgs

    def test_keepalives_between_messages_are_counted_and_dropped(self) -> None:
        f = Feeder()
        f.send(b"\r\n\r\n")
        f.send(sip(1) + b"\r\n\r\n\r\n" + sip(2))
        f.send(b"\r\n")
        f.send(sip(3))
        assert f.datas() == [sip(1), sip(2), sip(3)]
        assert f.tcp.counters.keepalives == 4

    def test_a_message_without_content_length_ends_at_the_next_start_line(self) -> None:
        f = Feeder()
        m1 = sip(1, b"body without length\r\n", length=None)
        f.send(m1 + sip(2))
        assert f.datas() == [m1, sip(2)]
        assert f.tcp.counters.no_content_length == 1
        assert any("without Content-Length" in n.text for n in f.tcp.notes)

    def test_a_message_without_content_length_at_the_end_ends_with_the_stream(self) -> None:
        f = Feeder()
        m1 = sip(1, b"tail", length=None)
        f.send(m1)
        assert f.out == []
        f.send(b"", flags=FIN | ACK)
        assert f.datas() == [m1]
        assert f.tcp.open_streams == 0

    def test_a_lying_huge_content_length_is_an_error_and_the_stream_resynchronises(self) -> None:
        f = Feeder(tcp=TcpReassembler(max_message=10_000))
        liar = sip(1, b"short body\r\n", length=None).replace(b"\r\n\r\n", b"\r\nContent-Length: 999999999\r\n\r\n")
        f.send(liar + sip(2))
        assert f.datas() == [sip(2)]
        assert f.tcp.counters.errors == 1
        assert any("Content-Length 999999999" in n.text for n in f.tcp.notes)

    def test_headers_that_never_end_are_bounded_and_resynchronised(self) -> None:
        f = Feeder(tcp=TcpReassembler(max_header=4096))
        f.send(b"INVITE sip:a@b SIP/2.0\r\n")
        for _ in range(100):
            f.send(b"X-Junk: " + b"y" * 90 + b"\r\n")
        assert len(f.tcp._streams[(*B, *A)].buf) < 8192
        f.send(b"\r\n" + sip(2))
        assert f.datas() == [sip(2)]
        assert f.tcp.counters.errors == 1

    def test_a_truncated_message_at_the_end_is_emitted_with_a_note(self) -> None:
        f = Feeder()
        m = sip(1, b"0123456789")
        f.send(m[:-4])
        assert f.tcp.flush() and f.tcp.counters.truncated == 1

    def test_a_response_starts_a_message_like_a_request(self) -> None:
        f = Feeder()
        f.send(reply(1) + reply(2)[:10])
        f.send(reply(2)[10:])
        assert f.datas() == [reply(1), reply(2)]


class TestOrdering:
    def test_a_retransmitted_segment_is_dropped_and_counted(self) -> None:
        f = Feeder()
        m1, m2 = sip(1), sip(2)
        f.send(m1)
        f.send(m1, seq=f.seq_at(0))
        f.send(m2)
        assert f.datas() == [m1, m2]
        assert f.tcp.counters.retransmissions == 1

    def test_an_overlapping_segment_contributes_only_its_new_bytes(self) -> None:
        f = Feeder()
        m = sip(1, b"b" * 100)
        f.send(m[:80])
        f.send(m[40:], seq=f.seq_at(40))
        assert f.datas() == [m]
        assert f.tcp.counters.retransmissions == 1

    def test_out_of_order_segments_wait_for_the_gap_to_fill(self) -> None:
        f = Feeder()
        m1, m2 = sip(1, b"a" * 50), sip(2, b"b" * 50)
        stream = m1 + m2
        cut = len(m1) + 30
        f.send(stream[cut:], seq=f.seq_at(cut))
        f.send(stream[len(m1):cut], seq=f.seq_at(len(m1)))
        assert f.out == []
        f.send(stream[:len(m1)], seq=f.seq_at(0))
        assert f.datas() == [m1, m2]
        assert f.tcp.counters.out_of_order == 2
        assert f.out[1].frame == 3 and f.out[1].parts == (2,)

    def test_sequence_numbers_wrap_around_32_bits(self) -> None:
        f = Feeder(isn=0xFFFFFFFF - 100)
        msgs = [sip(i, b"w" * 40) for i in range(5)]
        data = b"".join(msgs)
        for i in range(0, len(data), 70):
            f.send(data[i:i + 70])
        assert f.datas() == msgs

    def test_out_of_order_across_the_wrap(self) -> None:
        f = Feeder(isn=0xFFFFFFFF - 30)
        m = sip(1, b"q" * 100)
        f.send(m[60:], seq=f.seq_at(60))
        f.send(m[:60], seq=f.seq_at(0))
        assert f.datas() == [m]

    def test_a_gap_never_filled_is_reported_after_the_time_bound_and_the_stream_resyncs(self) -> None:
        f = Feeder(tcp=TcpReassembler(gap_seconds=2))
        m1, m2, m3 = sip(1, b"x" * 30), sip(2, b"y" * 30), sip(3)
        f.send(m1, ts=1)
        f.send(m2[:10], ts=1.5)  # the rest of m2 is never captured
        after = len(m1) + len(m2)
        f.send(m3, seq=f.seq_at(after), ts=2)
        assert f.datas() == [m1]
        f.send(sip(4), seq=f.seq_at(after + len(m3)), ts=5)
        assert f.datas() == [m1, m3, sip(4)]
        c = f.tcp.counters
        assert (c.gaps, c.lost_bytes) == (1, len(m2) - 10)
        assert any("never captured" in n.text for n in f.tcp.notes)

    def test_a_gap_is_reported_after_the_byte_bound(self) -> None:
        f = Feeder(tcp=TcpReassembler(gap_bytes=1000))
        msgs = [sip(i, b"z" * 200) for i in range(10)]
        off = len(msgs[0])
        for m in msgs[1:]:
            f.send(m, seq=f.seq_at(off))
            off += len(m)
        assert f.datas() == msgs[1:]
        assert f.tcp.counters.gaps == 1

    def test_a_stream_picked_up_mid_way_resyncs_at_the_first_start_line(self) -> None:
        f = Feeder(isn=777777, syn=False)
        tail = sip(0, b"the end of a body")[-30:]
        f.send(tail + sip(1))
        f.send(sip(2))
        assert f.datas() == [sip(1), sip(2)]
        assert f.tcp.counters.skipped_bytes == 30

    def test_a_start_line_split_across_segments_is_found_when_resyncing(self) -> None:
        f = Feeder(syn=False)
        data = b"garbage body\r\n" + reply(1)
        f.send(data[:20])
        f.send(data[20:])
        assert f.datas() == [reply(1)]

    def test_rst_closes_the_stream_and_emits_what_is_complete(self) -> None:
        f = Feeder()
        f.send(sip(1) + sip(2)[:10])
        f.send(b"", flags=RST)
        assert f.datas() == [sip(1)]
        assert f.tcp.open_streams == 0
        assert any("not a whole message" in n.text or "headers" in n.text for n in f.tcp.notes)

    def test_fin_before_a_gap_closes_once_the_gap_fills(self) -> None:
        f = Feeder()
        m1, m2 = sip(1), sip(2)
        f.send(m2, seq=f.seq_at(len(m1)), flags=FIN | ACK)
        assert f.tcp.open_streams == 1
        f.send(m1, seq=f.seq_at(0))
        assert f.datas() == [m1, m2]
        assert f.tcp.open_streams == 0

    def test_a_retransmission_after_the_close_is_not_a_new_stream(self) -> None:
        f = Feeder()
        f.send(sip(1))
        f.send(b"", flags=FIN | ACK)
        f.send(sip(1), seq=f.seq_at(0))
        assert f.datas() == [sip(1)]
        assert f.tcp.open_streams == 0

    def test_a_new_syn_on_the_same_ports_starts_a_new_stream(self) -> None:
        f = Feeder()
        f.send(sip(1))
        f.send(b"", seq=5000, flags=SYN)
        f.send(sip(2), seq=5001)
        assert f.datas() == [sip(1), sip(2)]
        assert f.tcp.counters.streams == 2

    def test_the_two_directions_are_separate_streams(self) -> None:
        tcp = TcpReassembler()
        tcp.segment(*B, *A, 100, SYN, b"", 1, 6, "f", 1)
        tcp.segment(*A, *B, 900, SYN | ACK, b"", 1, 6, "f", 2)
        r1 = sip(1)
        a = tcp.segment(*B, *A, 101, ACK, r1[:30], 2, 6, "f", 3)
        b = tcp.segment(*A, *B, 901, ACK, reply(1), 3, 6, "f", 4)
        c = tcp.segment(*B, *A, 131, ACK, r1[30:], 4, 6, "f", 5)
        assert a == [] and [p.data for p in b] == [reply(1)] and [p.data for p in c] == [r1]
        assert (b[0].src_port, c[0].src_port) == (A[1], B[1])

    def test_flush_emits_messages_waiting_behind_a_gap(self) -> None:
        f = Feeder()
        f.send(sip(2), seq=f.seq_at(100))
        assert f.out == []
        got = f.tcp.flush()
        assert [p.data for p in got] == [sip(2)]
        assert f.tcp.counters.lost_bytes == 100

    def test_pure_acks_cost_nothing(self) -> None:
        tcp = TcpReassembler()
        assert tcp.segment(*B, *A, 1, ACK, b"", 1, 6, "f", 1) == []
        assert tcp.open_streams == 0 and tcp.counters.segments == 0

    def test_too_many_streams_evict_the_oldest(self) -> None:
        tcp = TcpReassembler(max_streams=16)
        for i in range(40):
            tcp.segment("10.0.0.9", 1000 + i, *A, 1, ACK, sip(i)[:20], i, 6, "f", i + 1)
        assert tcp.open_streams <= 16
        assert tcp.counters.evicted >= 24


class TestWebSocketFraming:
    GET = (b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")

    def test_frames_after_the_upgrade_are_unmasked_and_joined(self) -> None:
        f = Feeder()
        key = b"\x01\x02\x03\x04"
        m1, m2 = sip(1, b"ws"), sip(2, b"x" * 300)
        data = (self.GET + build_frame(m1, key=key) + build_frame(b"", opcode=OP_PING, key=key)
                + build_frame(m2[:100], opcode=OP_BINARY, fin=False, key=key)
                + build_frame(m2[100:], opcode=OP_CONTINUATION, key=key))
        for i in range(0, len(data), 33):
            f.send(data[i:i + 33])
        assert f.datas() == [m1, m2]
        assert {p.transport for p in f.out} == {"ws"}
        assert f.tcp.counters.ws_control == 1 and f.tcp.counters.ws_streams == 1
        assert f.out[1].parts and f.out[1].parts[0] < f.out[1].frame

    def test_a_server_101_switches_that_direction(self) -> None:
        f = Feeder()
        resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: x\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
        f.send(resp + build_frame(reply(1)) + build_frame(b"x" * 70000, opcode=OP_BINARY))
        assert f.datas() == [reply(1), b"x" * 70000]

    def test_an_upgrade_to_another_protocol_is_not_sip(self) -> None:
        f = Feeder()
        f.send(self.GET.replace(b": sip", b": chat") + build_frame(sip(1), key=b"abcd"))
        assert f.out == [] and f.tcp.counters.ws_streams == 0

    def test_a_bad_frame_stops_that_stream_with_a_note(self) -> None:
        f = Feeder()
        f.send(self.GET + b"\x83\x05hello" + build_frame(sip(1)))
        assert f.out == []
        assert any("reserved opcode" in n.text for n in f.tcp.notes)


class TestHostileSegments:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 2, 4, 16, 17, 18]),
                              st.binary(max_size=300)), max_size=30))
    def test_random_segments_only_produce_payloads_and_bounded_buffers(
            self, segs: list[tuple[int, int, bytes]]) -> None:
        tcp = TcpReassembler(max_message=2048, max_header=1024, gap_bytes=4096)
        for i, (seq, flags, data) in enumerate(segs):
            for p in tcp.segment(*B, *A, seq, flags, data, i, 6, "h", i + 1):
                assert isinstance(p, Payload)
            for s in tcp._streams.values():
                assert len(s.buf) <= 2048 + 1024 + 300 and s.pending_bytes <= 4096 + 300
        tcp.flush()
        assert tcp.open_streams == 0

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(1, 200), min_size=1, max_size=40), st.integers(0, 0xFFFFFFFF))
    def test_any_cut_of_a_sip_stream_frames_the_same_messages(self, cuts: list[int], isn: int) -> None:
        msgs = [sip(i, b"b" * (i * 7)) for i in range(6)] + [reply(9)]
        data = b"\r\n\r\n".join(msgs)
        f = Feeder(isn=isn)
        i = 0
        for n in cuts:
            f.send(data[i:i + n])
            i += n
        f.send(data[i:])
        f.send(b"", flags=FIN)
        assert f.datas() == msgs


class TestFastPath:
    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(1, 400), min_size=1, max_size=40), st.integers(0, 0xFFFFFFFF),
           st.lists(st.integers(0, 6), max_size=3))
    def test_the_one_message_segment_path_gives_what_the_general_path_gives(
            self, cuts: list[int], isn: int, resend: list[int]) -> None:
        msgs = [sip(i, b"b" * (i * 7)) for i in range(6)] + [reply(9)]
        data = b"".join(msgs)
        # Whole messages as segments (the fast path), then arbitrary cuts (the general path),
        # with some segments sent again (retransmissions).
        pieces = list(msgs)
        i = 0
        rest = data
        for n in cuts:
            pieces.append(rest[i:i + n])
            i += n
        pieces.append(rest[i:])
        feeds = Feeder(isn=isn, tcp=TcpReassembler(fast=True)), Feeder(isn=isn, tcp=TcpReassembler(fast=False))
        for f in feeds:
            offset = 0
            for k, piece in enumerate(pieces):
                f.send(piece, seq=f.seq_at(offset))
                if k in resend:
                    f.send(piece, seq=f.seq_at(offset))
                offset += len(piece)
            f.send(b"", seq=f.seq_at(offset), flags=FIN)
        fast, general = feeds
        assert fast.out == general.out
        assert fast.tcp.counters == general.tcp.counters
