"""The corners of the file formats no Linux tool writes (simple and obsolete packet blocks,
power-of-2 and offset timestamps, unknown blocks), each checked against tshark's reading of the
same file; every kind of damage and what it becomes (a CaptureError naming the file and the
offset, or a counted skip with a warning); merging and path expansion."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest

from kamlog.capture.files import CaptureStats, expand_capture_paths, open_capture, read_captures
from kamlog.errors import CaptureError, KamlogError
from tests.capture.packets import ethernet, ipv4_udp, ipv6_udp
from tests.capture.realcap import (
    assert_same_as_tshark, block, epb, idb, need, opb, option, pcap_bytes, shb, spb,
)

T0 = 1_795_871_464_123_456_789  # a nanosecond timestamp in 2026


def udp_frames(count: int, start: int = 0) -> list[bytes]:
    out = []
    for i in range(start, start + count):
        payload = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: fmt-%d\r\n\r\n" % i
        if i % 2:
            out.append(ethernet(ipv6_udp("fd00::1", "fd00::2", 5060, 5070 + i, payload)))
        else:
            out.append(ethernet(ipv4_udp("10.0.0.1", "10.0.0.2", 5060, 5070 + i, payload)))
    return out


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def frames_of(path: Path, stats: CaptureStats | None = None) -> list:
    return list(open_capture(str(path), stats))


def small_pcap(count: int = 5, **kw) -> bytes:
    return pcap_bytes([(T0 // 1000 * 1000 + i * 1000, f, len(f)) for i, f in enumerate(udp_frames(count))], 1, **kw)


# ---------------------------------------------------------------------------------------------
# pcapng corners, against tshark


@need("tshark")
class TestPcapngAgainstTshark:
    def test_simple_and_obsolete_packet_blocks(self, tmp_path: Path) -> None:
        o = "<"
        frames = udp_frames(4)
        data = (shb(o) + idb(o, 1, 0) + epb(o, 0, T0 // 1000, frames[0]) + spb(o, frames[1])
                + opb(o, 0, T0 // 1000 + 5, frames[2]) + spb(o, frames[3]))
        path = write(tmp_path, "spb-opb.pcapng", data)
        ours, payloads = assert_same_as_tshark(path, times=False)
        assert [f.data for f in ours] == frames
        assert len(payloads) == 4
        # A simple packet block has no time: kamlog gives it the time of the packet before it.
        assert [f.ts_ns for f in ours] == [T0 // 1000 * 1000] * 2 + [(T0 // 1000 + 5) * 1000] * 2

    def test_simple_packet_block_cut_by_the_snapshot_length(self, tmp_path: Path) -> None:
        o = "<"
        frame = udp_frames(1)[0]
        data = shb(o) + idb(o, 1, 60) + spb(o, frame[:60], wire=len(frame))
        ours, _ = assert_same_as_tshark(write(tmp_path, "spb-snap.pcapng", data), times=False)
        assert ours[0].data == frame[:60] and ours[0].wire_len == len(frame)

    @pytest.mark.parametrize("tsresol,units", [(3, 10**3), (6, 10**6), (9, 10**9), (0x80 | 20, 2**20),
                                               (0x80 | 30, 2**30), (0x80 | 10, 2**10)])
    def test_timestamp_resolutions(self, tmp_path: Path, tsresol: int, units: int) -> None:
        o = "<"
        seconds = T0 // 10**9
        blocks = [shb(o), idb(o, 1, 262144, option(o, 9, bytes([tsresol])))]
        for i, frame in enumerate(udp_frames(6)):
            blocks.append(epb(o, 0, seconds * units + i * 7919 % units, frame))
        path = write(tmp_path, f"tsresol-{tsresol}.pcapng", b"".join(blocks))
        ours, _ = assert_same_as_tshark(path)
        if tsresol & 0x80:
            assert ours[1].ts_ns == seconds * 10**9 + (7919 % units) * 10**9 // units
        else:
            assert ours[0].digits == tsresol

    def test_timestamp_offset_option(self, tmp_path: Path) -> None:
        o = "<"
        offset = struct.pack(o + "q", 1_700_000_000)
        data = shb(o) + idb(o, 1, 262144, option(o, 14, offset)) + b"".join(
            epb(o, 0, 1_000_000 * i + 17, f) for i, f in enumerate(udp_frames(3)))
        ours, _ = assert_same_as_tshark(write(tmp_path, "tsoffset.pcapng", data))
        assert ours[0].ts_ns == 1_700_000_000 * 10**9 + 17_000

    def test_unknown_blocks_are_skipped_by_their_length(self, tmp_path: Path) -> None:
        o = ">"
        frames = udp_frames(4)
        record = bytes([10, 0, 0, 1]) + b"x.test\0"
        name_resolution = block(o, 4, struct.pack(o + "HH", 1, len(record)) + record + b"\0"
                                + struct.pack(o + "HH", 0, 0))
        custom = block(o, 0x00000BAD, struct.pack(o + "I", 32473) + b"kamlog custom data")
        unknown = block(o, 0x00001234, b"\x01\x02\x03")
        data = (shb(o) + idb(o, 1) + name_resolution + epb(o, 0, T0 // 1000, frames[0])
                + epb(o, 0, T0 // 1000 + 1, frames[1]) + custom + unknown + epb(o, 0, T0 // 1000 + 2, frames[2])
                + epb(o, 0, T0 // 1000 + 3, frames[3]))
        stats = CaptureStats()
        path = write(tmp_path, "unknown.pcapng", data)
        # tshark numbers the custom block as frame 3: so does kamlog, without reading it.
        ours, _ = assert_same_as_tshark(path, records=[3])
        assert [f.number for f in ours] == [1, 2, 4, 5]
        assert [f.data for f in frames_of(path, stats)] == frames
        assert stats.skipped_blocks == 3 and stats.frames == 4 and stats.warnings == []

    def test_interfaces_of_different_link_types_and_resolutions(self, tmp_path: Path) -> None:
        o = "<"
        eth = udp_frames(2)
        raw = [f[14:] for f in udp_frames(2, start=2)]
        data = (shb(o) + idb(o, 1, 262144, option(o, 9, b"\x09")) + idb(o, 101, 262144, option(o, 9, b"\x06"))
                + epb(o, 0, T0, eth[0]) + epb(o, 1, T0 // 1000 + 1, raw[0])
                + epb(o, 0, T0 + 2000, eth[1]) + epb(o, 1, T0 // 1000 + 3, raw[1]))
        ours, payloads = assert_same_as_tshark(write(tmp_path, "two-links.pcapng", data))
        assert [(f.linktype, f.digits) for f in ours] == [(1, 9), (101, 6), (1, 9), (101, 6)]
        assert len(payloads) == 4


# ---------------------------------------------------------------------------------------------
# damage


class TestErrors:
    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(CaptureError, match=r"nope\.pcap: no such file"):
            open_capture(str(tmp_path / "nope.pcap"))

    def test_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(CaptureError, match="is a directory"):
            open_capture(str(tmp_path))

    def test_text_is_not_a_capture(self, tmp_path: Path) -> None:
        path = write(tmp_path, "x.txt", b"Nov 28 09:40:01 vm kamailio[3159]: ERROR: x\n")
        with pytest.raises(CaptureError) as caught:
            open_capture(str(path))
        assert str(caught.value) == f"{path} is not a pcap or pcapng capture (starts with 'Nov 28 09:40:01 ')"
        assert isinstance(caught.value, KamlogError)

    def test_binary_is_not_a_capture(self, tmp_path: Path) -> None:
        path = write(tmp_path, "x.bin", bytes(range(200, 250)))
        with pytest.raises(CaptureError, match=r"not a pcap or pcapng capture \(starts with c8 c9 ca cb"):
            open_capture(str(path))

    def test_zstd_says_what_to_do(self, tmp_path: Path) -> None:
        path = write(tmp_path, "x.pcap.zst", b"\x28\xb5\x2f\xfd" + bytes(40))
        with pytest.raises(CaptureError, match=r"zstd-compressed: decompress it first"):
            open_capture(str(path))

    def test_gzip_of_something_else(self, tmp_path: Path) -> None:
        path = write(tmp_path, "x.gz", gzip.compress(b"hello world, not a capture"))
        with pytest.raises(CaptureError, match=r"not a pcap or pcapng capture \(gzip-compressed data; starts with 'hello"):
            open_capture(str(path))

    def test_an_empty_file_has_no_frames_and_a_warning(self, tmp_path: Path) -> None:
        stats = CaptureStats()
        assert frames_of(write(tmp_path, "empty.pcap", b""), stats) == []
        assert stats.files == 1 and "is empty" in stats.warnings[0]

    @pytest.mark.parametrize("cut", [2, 10, 23])
    def test_a_cut_pcap_header(self, tmp_path: Path, cut: int) -> None:
        path = write(tmp_path, "cut.pcap", small_pcap()[:cut])
        with pytest.raises(CaptureError, match=r"cut\.pcap: the (pcap file|capture's) header is cut short"):
            frames_of(path)

    def test_a_cut_pcapng_section_header(self, tmp_path: Path) -> None:
        path = write(tmp_path, "cut.pcapng", shb("<")[:20])
        with pytest.raises(CaptureError, match=r"cut\.pcapng: the pcapng section header is cut short"):
            frames_of(path)

    def test_an_unknown_pcap_version(self, tmp_path: Path) -> None:
        data = bytearray(small_pcap())
        data[4:6] = struct.pack("<H", 3)
        with pytest.raises(CaptureError, match=r"pcap version 3\.4 is not supported"):
            frames_of(write(tmp_path, "v3.pcap", bytes(data)))

    def test_a_pcap_record_with_an_absurd_length(self, tmp_path: Path) -> None:
        data = bytearray(small_pcap(5))
        second = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
        struct.pack_into("<I", data, second + 8, 0x7FFFFFF0)
        stats = CaptureStats()
        got = []
        with pytest.raises(CaptureError, match=rf"at byte {second} \(frame 2\) claims 2147483632 captured bytes"):
            for f in open_capture(str(write(tmp_path, "liar.pcap", bytes(data))), stats):
                got.append(f)
        assert len(got) == 1  # the frame before it was read

    def test_a_cut_last_pcap_record_is_a_warning(self, tmp_path: Path) -> None:
        data = small_pcap(5)
        for cut in (5, 16, 30):
            stats = CaptureStats()
            got = frames_of(write(tmp_path, "cut.pcap", data[:-cut]), stats)
            assert len(got) == 4 and stats.skipped_blocks == 1
            assert "the last record (frame 5" in stats.warnings[0]

    def test_a_zero_filled_tail_is_a_warning(self, tmp_path: Path) -> None:
        for name, data in (("z.pcap", small_pcap(3)), ("z.pcapng", shb("<") + idb("<", 1) + epb("<", 0, 1, b"x" * 60))):
            stats = CaptureStats()
            got = frames_of(write(tmp_path, name, data + bytes(5000)), stats)
            assert len(got) in (1, 3)
            assert stats.warnings and "zero bytes" in stats.warnings[0], stats.warnings

    def pcapng(self) -> bytes:
        o = "<"
        return shb(o) + idb(o, 1) + b"".join(epb(o, 0, T0 // 1000 + i, f) for i, f in enumerate(udp_frames(4)))

    def second_epb(self, data: bytes) -> int:
        pos = 0
        seen = 0
        while True:
            kind, length = struct.unpack_from("<II", data, pos)
            if kind == 6:
                seen += 1
                if seen == 2:
                    return pos
            pos += length

    @pytest.mark.parametrize("length,message", [
        (0, r"impossible length \(0\)"), (8, r"impossible length \(8\)"), (102, r"impossible length \(102\)"),
        (200000, r"claims 200000 bytes but holds a packet of \d+"), (1 << 31, r"claims 2147483648 bytes, more than any capture block"),
    ])
    def test_a_pcapng_block_with_a_lying_length(self, tmp_path: Path, length: int, message: str) -> None:
        data = bytearray(self.pcapng())
        at = self.second_epb(bytes(data))
        struct.pack_into("<I", data, at + 4, length)
        got = []
        with pytest.raises(CaptureError, match=rf"liar\.pcapng: .*block at byte {at}.*{message}|{message}"):
            for f in open_capture(str(write(tmp_path, "liar.pcapng", bytes(data)))):
                got.append(f)
        assert len(got) == 1

    def test_a_pcapng_block_whose_trailing_length_differs(self, tmp_path: Path) -> None:
        data = bytearray(self.pcapng())
        at = self.second_epb(bytes(data))
        length = struct.unpack_from("<I", data, at + 4)[0]
        struct.pack_into("<I", data, at + length - 4, length + 4)
        with pytest.raises(CaptureError, match=rf"block at byte {at} has a trailing length \({length + 4}\) that "
                                               rf"differs from its leading length \({length}\)"):
            frames_of(write(tmp_path, "trail.pcapng", bytes(data)))

    def test_a_packet_of_an_interface_not_described(self, tmp_path: Path) -> None:
        o = "<"
        data = shb(o) + idb(o, 1) + epb(o, 3, 1, b"x" * 60)
        with pytest.raises(CaptureError, match=r"names interface 3, but its section describes 1 interface"):
            frames_of(write(tmp_path, "iface.pcapng", data))

    def test_a_packet_whose_captured_length_does_not_fit(self, tmp_path: Path) -> None:
        data = bytearray(self.pcapng())
        at = self.second_epb(bytes(data))
        struct.pack_into("<I", data, at + 20, 5000)
        with pytest.raises(CaptureError, match=rf"packet block at byte {at} claims 5000 captured bytes"):
            frames_of(write(tmp_path, "caplen.pcapng", bytes(data)))

    def test_a_cut_last_pcapng_block_is_a_warning(self, tmp_path: Path) -> None:
        data = self.pcapng()
        for cut in (1, 4, 11, 12, 40):
            stats = CaptureStats()
            got = frames_of(write(tmp_path, "cut.pcapng", data[:-cut]), stats)
            assert len(got) == 3 and stats.skipped_blocks == 1, cut
            assert "incomplete" in stats.warnings[0] or "not a block" in stats.warnings[0]

    def test_garbage_after_the_last_block(self, tmp_path: Path) -> None:
        stats = CaptureStats()
        assert len(frames_of(write(tmp_path, "tail.pcapng", self.pcapng() + b"\x01\x02\x03"), stats)) == 4
        assert stats.warnings == [f"{tmp_path / 'tail.pcapng'}: 3 bytes that are not a block after the last "
                                  f"block (at byte {len(self.pcapng())}): ignored"]

    def test_an_unknown_byte_order_magic(self, tmp_path: Path) -> None:
        data = bytearray(self.pcapng())
        data[8:12] = b"\x01\x02\x03\x04"
        with pytest.raises(CaptureError, match=r"no valid byte-order magic \(01 02 03 04\)"):
            frames_of(write(tmp_path, "bom.pcapng", bytes(data)))


# ---------------------------------------------------------------------------------------------
# merging and paths


def test_equal_times_keep_the_order_paths_are_given_in(tmp_path: Path) -> None:
    frames = udp_frames(6)
    a = write(tmp_path, "a.pcap", pcap_bytes([(T0, frames[0], 80), (T0 + 1000, frames[1], 80)], 1))
    b = write(tmp_path, "b.pcap", pcap_bytes([(T0, frames[2], 80), (T0 + 1000, frames[3], 80)], 1))
    c = write(tmp_path, "c.pcap", pcap_bytes([(T0 - 1000, frames[4], 80), (T0, frames[5], 80)], 1))
    got = [(Path(f.file).name, f.number) for f in read_captures([str(b), str(a), str(c)])]
    assert got == [("c.pcap", 1), ("b.pcap", 1), ("a.pcap", 1), ("c.pcap", 2), ("b.pcap", 2), ("a.pcap", 2)]


def test_a_missing_file_among_several_fails_before_any_frame(tmp_path: Path) -> None:
    a = write(tmp_path, "a.pcap", small_pcap())
    with pytest.raises(CaptureError, match="no such file"):
        read_captures([str(a), str(tmp_path / "gone.pcap")])


def test_a_rotated_set_is_read_with_few_files_open(tmp_path: Path) -> None:
    """200 files of consecutive times: never more than two open while merging."""
    paths = []
    for i in range(200):
        records = [(T0 + (i * 10 + k) * 1000, f, len(f)) for k, f in enumerate(udp_frames(3, start=i))]
        paths.append(str(write(tmp_path, f"cap.pcap{i or ''}", pcap_bytes(records, 1))))
    fd_dir = Path("/proc/self/fd")
    before = len(os.listdir(fd_dir))
    most = 0
    count = 0
    stats = CaptureStats()
    for frame in read_captures(list(reversed(paths)), stats):
        count += 1
        most = max(most, len(os.listdir(fd_dir)) - before)
    assert count == 600 and stats.frames == 600 and stats.files == 200
    assert most <= 2


def test_merging_overlapping_files_is_in_time_order(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        records = [(T0 + (k * 5 + i) * 1000, f, len(f)) for k, f in enumerate(udp_frames(20, start=i * 20))]
        paths.append(str(write(tmp_path, f"part{i}.pcap", pcap_bytes(records, 1))))
    times = [f.ts_ns for f in read_captures(paths)]
    assert len(times) == 100 and times == sorted(times)


def test_files_without_frames_take_no_part_but_are_counted(tmp_path: Path) -> None:
    a = write(tmp_path, "a.pcap", small_pcap(3))
    empty = write(tmp_path, "empty.pcap", b"")
    header = write(tmp_path, "header.pcap", small_pcap(0))
    stats = CaptureStats()
    assert len(list(read_captures([str(a), str(empty), str(header)], stats))) == 3
    assert stats.files == 3 and len(stats.warnings) == 1


def test_expand_capture_paths(tmp_path: Path) -> None:
    for name in ("cap.pcap", "cap.pcap1", "cap.pcap2", "cap.pcap10", ".hidden.pcap"):
        write(tmp_path, name, small_pcap(1))
    (tmp_path / "sub").mkdir()
    names = ["cap.pcap", "cap.pcap1", "cap.pcap2", "cap.pcap10"]
    assert expand_capture_paths([str(tmp_path)]) == [str(tmp_path / n) for n in names]
    assert expand_capture_paths([str(tmp_path / "cap.pcap*")]) == [str(tmp_path / n) for n in names]
    # each file once, in the order first named; a plain name is kept even if missing
    assert expand_capture_paths([str(tmp_path / "cap.pcap2"), str(tmp_path), "missing.pcap"]) == \
        [str(tmp_path / "cap.pcap2")] + [str(tmp_path / n) for n in names if n != "cap.pcap2"] + ["missing.pcap"]
    with pytest.raises(CaptureError, match=r"no capture file matches .*nothing\*"):
        expand_capture_paths([str(tmp_path / "nothing*")])
    with pytest.raises(CaptureError, match="is a directory with no files in it"):
        expand_capture_paths([str(tmp_path / "sub")])
