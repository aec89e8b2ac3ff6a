"""Hostile input: random bytes, real captures cut at every length, lying length fields, absurd
captured lengths. Reading them gives frames or a CaptureError, never another exception and
never a hang (every read runs under an alarm); decoding any frame never raises."""

from __future__ import annotations

import gzip
import signal
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamlog.capture.decode import PacketDecoder
from kamlog.capture.files import CaptureStats, open_capture, read_captures
from kamlog.capture.packets import Frame
from kamlog.errors import CaptureError
from tests.capture.realcap import epb, idb, pcap_bytes, shb, spb

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "capture.pcap"  # a real Kamailio capture (examples/README.md)


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise Hang in this (the main) thread if the block runs longer than ``seconds``."""
    def ring(_sig: int, _frame: object) -> None:
        raise Hang(f"still running after {seconds}s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def read_all(path: Path) -> tuple[list[Frame], CaptureError | None, CaptureStats]:
    """Every frame of ``path`` and the CaptureError that ended it, if any; anything else fails."""
    stats = CaptureStats()
    frames: list[Frame] = []
    decoder = PacketDecoder()
    with alarm(10):
        try:
            for frame in open_capture(str(path), stats):
                assert isinstance(frame, Frame)
                frames.append(frame)
                decoder(frame)
            decoder.finish()
            decoder.notes()
        except CaptureError as exc:
            assert str(path) in str(exc)  # the sentence names the file
            return frames, exc, stats
    return frames, None, stats


def small_captures() -> dict[str, bytes]:
    """The first frames of the real sample as pcap (µs, little-endian), pcap (ns, big-endian) and
    pcapng."""
    frames = list(open_capture(str(SAMPLE)))[:6]
    records = [(f.ts_ns, f.data, f.wire_len) for f in frames]
    ng = shb("<") + idb("<", 1) + b"".join(epb("<", 0, f.ts_ns // 1000, f.data, f.wire_len) for f in frames[:5]) \
        + spb("<", frames[5].data)
    return {
        "pcap": pcap_bytes(records, 1),
        "pcap-ns-be": pcap_bytes(records, 1, order=">", nano=True),
        "pcapng": ng,
    }


SMALL = small_captures()


def boundaries(kind: str, data: bytes) -> list[int]:
    """Where the header and each record or block ends."""
    if kind.startswith("pcap-ns-be") or kind == "pcap":
        order = ">" if kind.endswith("be") else "<"
        ends = [24]
        while ends[-1] < len(data):
            ends.append(ends[-1] + 16 + struct.unpack_from(order + "I", data, ends[-1] + 8)[0])
        return ends
    ends = [struct.unpack_from("<I", data, 4)[0]]
    while ends[-1] < len(data):
        ends.append(ends[-1] + struct.unpack_from("<I", data, ends[-1] + 4)[0])
    return ends


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_a_real_capture_cut_at_every_length(tmp_path: Path, kind: str) -> None:
    """Cut at every byte: before the end of the header, a CaptureError; at a record boundary, the
    records before it and nothing to say; inside a record, the records before it and one warning."""
    data = SMALL[kind]
    whole, error, _ = read_all_bytes(tmp_path, data)
    assert error is None and len(whole) == 6
    ends = boundaries(kind, data)
    header = 24 if kind.startswith("pcap") and kind != "pcapng" else ends[1]  # pcapng: SHB + IDB
    for cut in range(len(data)):
        frames, error, stats = read_all_bytes(tmp_path, data[:cut])
        complete = sum(1 for e in ends[1 if header == 24 else 2:] if e <= cut)
        if cut == 0:
            assert frames == [] and error is None and "is empty" in stats.warnings[0]
        elif cut < ends[0]:
            assert error is not None and "cut short" in str(error), cut
        else:
            assert error is None, (cut, error)
            assert [f.data for f in frames] == [f.data for f in whole[:complete]], cut
            assert [f.number for f in frames] == list(range(1, complete + 1))
            if cut in ends:
                assert stats.warnings == [], (cut, stats.warnings)
            else:
                assert len(stats.warnings) == 1 and stats.skipped_blocks == 1, (cut, stats)


def read_all_bytes(tmp_path: Path, data: bytes) -> tuple[list[Frame], CaptureError | None, CaptureStats]:
    path = tmp_path / "x.cap"
    path.write_bytes(data)
    return read_all(path)


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_every_length_field_flipped(tmp_path: Path, kind: str) -> None:
    """Each record's or block's length field (and a packet block's captured length) replaced
    by 0, 1, 3, 12, its neighbours, a bit flipped and the largest values."""
    data = SMALL[kind]
    fields = []  # (offset, order) of every length field
    if kind.startswith("pcap-ns-be"):
        pos, order = 24, ">"
        while pos < len(data):
            fields += [(pos + 8, order), (pos + 12, order)]
            pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
    elif kind == "pcap":
        pos, order = 24, "<"
        while pos < len(data):
            fields += [(pos + 8, order), (pos + 12, order)]
            pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
    else:
        pos, order = 0, "<"
        while pos < len(data):
            kind_, length = struct.unpack_from("<II", data, pos)
            fields += [(pos + 4, order), (pos + length - 4, order)]
            if kind_ == 6:
                fields.append((pos + 20, order))
            pos += length
    for offset, order in fields:
        value = struct.unpack_from(order + "I", data, offset)[0]
        for new in {0, 1, 3, 12, value - 1, value + 1, value + 4, value ^ 0x100, 0x7FFFFFFF, 0xFFFFFFFF}:
            broken = bytearray(data)
            struct.pack_into(order + "I", broken, offset, new & 0xFFFFFFFF)
            read_all_bytes(tmp_path, bytes(broken))


def test_a_zero_length_pcapng_block(tmp_path: Path) -> None:
    data = shb("<") + idb("<", 1) + struct.pack("<II", 6, 0) + bytes(20) + epb("<", 0, 1, b"x" * 60)
    frames, error, _ = read_all_bytes(tmp_path, data)
    assert frames == [] and error is not None and "impossible length (0)" in str(error)


def test_a_huge_captured_length_is_refused_before_reading(tmp_path: Path) -> None:
    data = pcap_bytes([(1, b"x" * 60, 60)], 1) + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 100
    frames, error, _ = read_all_bytes(tmp_path, data)
    assert len(frames) == 1 and error is not None and "claims 4294967280 captured bytes" in str(error)


MAGICS = [b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\xa1\xb2\xc3\xd4\x00\x02\x00\x04",
          b"\x4d\x3c\xb2\xa1\x02\x00\x04\x00", b"\x0a\x0d\x0d\x0a", b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00"]


@settings(max_examples=600, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(MAGICS), st.binary(max_size=3000), st.booleans())
def test_random_bytes(tmp_path: Path, magic: bytes, rest: bytes, compress: bool) -> None:
    data = magic + rest
    if compress:
        data = gzip.compress(data)[: len(data) // 2 + 20] if rest[:1] == b"\x00" else gzip.compress(data)
    read_all_bytes(tmp_path, data)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(SMALL)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_real_captures_with_random_bytes_changed(tmp_path: Path, kind: str, changes: list[tuple[int, int]]) -> None:
    data = bytearray(SMALL[kind])
    for pos, value in changes:
        data[pos % len(data)] = value
    read_all_bytes(tmp_path, bytes(data))


LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 239, 276, 147]


@settings(max_examples=2000, deadline=1000)
@given(st.sampled_from(LINKTYPES), st.binary(max_size=200), st.integers(0, 300))
def test_decoding_random_frames_never_raises(linktype: int, data: bytes, extra: int) -> None:
    decoder = PacketDecoder()
    decoder(Frame("r.pcap", 1, 1, 6, linktype, data, len(data) + extra))
    decoder(Frame("r.pcap", 2, 2, 6, linktype, b"\x08\x00\x45" + data, len(data) + 3))
    decoder.finish()
    decoder.notes()


@settings(max_examples=500, deadline=1000)
@given(st.binary(min_size=20, max_size=120), st.sampled_from([4, 6]), st.integers(0, 255))
def test_decoding_random_ip_headers_never_raises(body: bytes, version: int, proto: int) -> None:
    """Random bytes behind a plausible IP version nibble and protocol: headers, options,
    extension header chains, fragment fields all random."""
    head = bytearray(body)
    head[0] = (version << 4) | (head[0] & 0x0F)
    if version == 4 and len(head) > 9:
        head[9] = proto
    elif version == 6 and len(head) > 6:
        head[6] = proto
    decoder = PacketDecoder()
    for number in range(1, 4):
        decoder(Frame("r.pcap", number, number, 6, 101, bytes(head), len(head)))
    decoder.finish()
    s = decoder.stats
    assert s.frames == s.non_ip + s.truncated + s.bad_headers + s.udp + s.tcp + s.other_l4 + s.fragments - s.reassembled


def test_many_random_files_merged(tmp_path: Path) -> None:
    """read_captures over files that are good, cut, and garbage: frames, or one CaptureError."""
    paths = []
    for i, (kind, data) in enumerate(sorted(SMALL.items())):
        for cut in (len(data), len(data) - 7):
            path = tmp_path / f"{i}-{cut}.cap"
            path.write_bytes(data[:cut])
            paths.append(str(path))
    stats = CaptureStats()
    with alarm(10):
        frames = list(read_captures(paths, stats))
    assert len(frames) == 6 * 3 + 5 * 3 and len(stats.warnings) == 3
    bad = tmp_path / "bad.cap"
    bad.write_bytes(b"garbage!" * 10)
    with pytest.raises(CaptureError, match="bad.cap is not a pcap or pcapng capture"):
        read_captures([*paths, str(bad)])
