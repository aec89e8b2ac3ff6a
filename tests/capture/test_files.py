"""Capture files, read as tshark reads them: real captures of SIP-looking UDP on loopback made by
tcpdump (Ethernet on ``lo``, Linux cooked v2 and v1 on ``-i any``, µs and ns, a snapshot length),
dumpcap and tshark (pcapng, one and two interfaces), the files editcap and mergecap make of them,
byte-swapped and compressed copies, real rotated sets, and a capture whose tcpdump was killed.
For each, frame numbers, timestamps, lengths, frame bytes, addresses, ports and payloads must
equal tshark's reading of the same file."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kamlog.capture.files import CaptureStats, expand_capture_paths, open_capture, read_captures
from tests.capture.realcap import (
    Capture, Captures, assert_same_as_tshark, byteswap_pcap, decode_all, dumpcap, epoch_ns, free_udp_port,
    need, pcapng_to_order, send_udp, sip_text, tcpdump, tshark_fields,
)
from tests.corpus.runners import Process, wait_for

pytestmark = [pytest.mark.realworld, need("tcpdump", "tshark", "dumpcap", "editcap", "mergecap")]


@dataclass
class Loopback:
    """One burst of SIP-looking UDP on 127.0.0.1 and ::1, captured by several programs at once."""

    dir: Path
    port: int
    sent: list[tuple[str, bytes]]  # (family, datagram) in the order sent

    def path(self, name: str) -> Path:
        return self.dir / name


# name -> (how it was captured, linktypes kamlog must see, timestamp digits)
CAPTURED = {
    "lo.pcap": ("tcpdump -i lo", {1}, 6),
    "lo-ns.pcap": ("tcpdump -i lo --time-stamp-precision=nano", {1}, 9),
    "any-sll2.pcap": ("tcpdump -i any (Debian 12: Linux cooked v2)", {276}, 6),
    "any-sll.pcap": ("tcpdump -i any -y LINUX_SLL", {113}, 6),
    "lo-snap.pcap": ("tcpdump -i lo -s 150", {1}, 6),
    "dumpcap.pcapng": ("dumpcap -i lo", {1}, 9),
    "dumpcap-2if.pcapng": ("dumpcap -i lo -i any", {1, 113}, 9),
    "tshark.pcapng": ("tshark -i lo -F pcapng", {1}, 9),
}


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Loopback:
    workdir = tmp_path_factory.mktemp("loopback")
    port = free_udp_port()
    bpf = f"udp port {port}"
    p = workdir.joinpath
    captures = [
        tcpdump(workdir, "lo", p("lo.pcap"), bpf),
        tcpdump(workdir, "lo-ns", p("lo-ns.pcap"), bpf, "--time-stamp-precision=nano"),
        tcpdump(workdir, "any-sll2", p("any-sll2.pcap"), bpf, interface="any"),
        tcpdump(workdir, "any-sll", p("any-sll.pcap"), bpf, "-y", "LINUX_SLL", interface="any"),
        tcpdump(workdir, "lo-snap", p("lo-snap.pcap"), bpf, "-s", "150"),
        dumpcap(workdir, "dumpcap", p("dumpcap.pcapng"), bpf, "lo"),
        dumpcap(workdir, "dumpcap-2if", p("dumpcap-2if.pcapng"), bpf, "lo", "any"),
    ]
    tshark = p("tshark.pcapng")
    captures.append(Capture(workdir, "tshark", ["tshark", "-n", "-i", "lo", "-f", bpf, "-F", "pcapng",
                                                "-w", str(tshark)], tshark, "Capturing on"))
    sent = []
    for i in range(40):
        family = "4" if i % 2 == 0 else "6"
        size = (0, 100, 1400, 3000, 20000)[i % 5]
        sent.append((family, sip_text(f"lo-{i}-{family}@kamlog.test", body=size)))
    with Captures(*captures):
        send_udp(port, sent)
    return Loopback(workdir, port, sent)


def payload_set(payloads) -> list[bytes]:
    return sorted(p.data for p in payloads)


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_a_real_capture_reads_as_tshark_reads_it(loopback: Loopback, name: str) -> None:
    how, linktypes, digits = CAPTURED[name]
    path = loopback.path(name)
    frames, payloads = assert_same_as_tshark(path)
    assert {f.linktype for f in frames} == linktypes, how
    assert {f.digits for f in frames} == {digits}, how
    sent = sorted(d for _f, d in loopback.sent)
    if name == "lo-snap.pcap":
        # Cut by the snapshot length: each payload is the start of what was sent.
        assert len(payloads) == len(sent)
        for p in payloads:
            assert any(d.startswith(p.data) for d in sent)
        assert any(len(p.data) < 150 for p in payloads)
    elif name == "dumpcap-2if.pcapng":
        assert payload_set(payloads) == sorted(sent * 2)  # seen on lo and on any
    else:
        assert payload_set(payloads) == sent, how
    families = {p.src_ip for p in payloads}
    assert families == {"127.0.0.1", "::1"}


def test_snapshot_length_cuts_are_counted(loopback: Loopback) -> None:
    stats = CaptureStats()
    frames = list(read_captures([str(loopback.path("lo-snap.pcap"))], stats))
    cut = [f for f in frames if len(f.data) < f.wire_len]
    assert cut and stats.truncated == len(cut)
    assert stats.frames == len(frames) and stats.bytes == sum(len(f.data) for f in frames)
    payloads, decoder = decode_all(frames)
    assert decoder.stats.cut_payloads == len(cut)
    assert any("snapshot length" in n for n in decoder.notes())


def test_dumpcap_statistics_blocks_are_skipped_and_counted(loopback: Loopback) -> None:
    stats = CaptureStats()
    list(open_capture(str(loopback.path("dumpcap.pcapng")), stats))
    assert stats.skipped_blocks >= 1  # the interface statistics block dumpcap writes at the end
    assert stats.warnings == []


# ---------------------------------------------------------------------------------------------
# the same capture, converted


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"


def test_editcap_conversions(loopback: Loopback, tmp_path: Path) -> None:
    """editcap's formats kamlog reads: ns pcap from µs, pcapng from pcap, pcap from pcapng."""
    conversions = [
        ("nsecpcap", "lo.pcap", "lo-to-ns.pcap", 9),
        ("pcapng", "lo.pcap", "lo-to.pcapng", 6),
        ("pcap", "dumpcap.pcapng", "dumpcap-to.pcap", 6),
        ("pcap", "any-sll2.pcap", "any-sll2-copy.pcap", 6),
    ]
    for fmt, src, dst, digits in conversions:
        out = tmp_path / dst
        run("editcap", "-F", fmt, str(loopback.path(src)), str(out))
        frames, payloads = assert_same_as_tshark(out)
        assert {f.digits for f in frames} == {digits}, dst
        assert payload_set(payloads) == sorted(d for _f, d in loopback.sent), dst


@pytest.mark.parametrize("name", ["lo.pcap", "lo-ns.pcap", "any-sll2.pcap"])
def test_big_endian_pcap(loopback: Loopback, tmp_path: Path, name: str) -> None:
    """A big-endian pcap (as a SPARC or PowerPC tcpdump writes it): the real file byte-swapped."""
    out = tmp_path / ("be-" + name)
    out.write_bytes(byteswap_pcap(loopback.path(name).read_bytes()))
    assert out.read_bytes()[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
    frames, _ = assert_same_as_tshark(out)
    original = list(open_capture(str(loopback.path(name))))
    assert [(f.number, f.ts_ns, f.data, f.wire_len, f.digits) for f in frames] == \
           [(f.number, f.ts_ns, f.data, f.wire_len, f.digits) for f in original]


def test_big_endian_and_multi_section_pcapng(loopback: Loopback, tmp_path: Path) -> None:
    """A big-endian pcapng, and a file of three sections (little, big, little endian) each with
    its own interfaces: the real dumpcap files rewritten."""
    le2 = loopback.path("dumpcap-2if.pcapng").read_bytes()
    le1 = loopback.path("dumpcap.pcapng").read_bytes()
    be = tmp_path / "be.pcapng"
    be.write_bytes(pcapng_to_order(le2, ">"))
    frames, _ = assert_same_as_tshark(be)
    assert {f.linktype for f in frames} == {1, 113}
    multi = tmp_path / "multi.pcapng"
    multi.write_bytes(le1 + pcapng_to_order(le2, ">") + le2)
    frames, payloads = assert_same_as_tshark(multi)
    n1 = len(list(open_capture(str(loopback.path("dumpcap.pcapng")))))
    assert len(frames) == n1 + 2 * len(list(open_capture(str(be))))
    assert len(payloads) == len(frames)


def test_mergecap_multi_interface_pcapng(loopback: Loopback, tmp_path: Path) -> None:
    """mergecap of the Ethernet and the Linux cooked v2 capture: one pcapng with two interfaces of
    different link types; each frame decodes with its own interface's."""
    out = tmp_path / "merged.pcapng"
    run("mergecap", "-F", "pcapng", "-w", str(out), str(loopback.path("lo.pcap")),
        str(loopback.path("any-sll2.pcap")))
    frames, payloads = assert_same_as_tshark(out)
    assert {f.linktype for f in frames} == {1, 276}
    ref = tshark_fields(out, ("frame.number", "frame.interface_id"))
    by_iface = {}
    for f, row in zip(frames, ref):
        by_iface.setdefault(row["frame.interface_id"], set()).add(f.linktype)
    assert sorted(map(len, by_iface.values())) == [1, 1]
    assert payload_set(payloads) == sorted(d for _f, d in loopback.sent * 2)


@pytest.mark.parametrize("kind", ["gzip-tool", "gzip", "bzip2", "xz"])
def test_compressed_captures(loopback: Loopback, tmp_path: Path, kind: str) -> None:
    for name in ("lo-ns.pcap", "dumpcap-2if.pcapng"):
        src = loopback.path(name)
        original = list(open_capture(str(src)))
        if kind == "gzip-tool":  # what tcpdump -z gzip leaves
            out = tmp_path / name
            shutil.copy(src, out)
            run("gzip", str(out))
            out = out.with_name(name + ".gz")
        else:
            module = {"gzip": gzip, "bzip2": bz2, "xz": lzma}[kind]
            out = tmp_path / (name + ".cap")  # the extension says nothing: the magic does
            out.write_bytes(module.compress(src.read_bytes()))
        if kind.startswith("gzip"):
            assert_same_as_tshark(out)
        assert list(open_capture(str(out))) == [f._replace(file=str(out)) for f in original]


def test_a_cut_gzip_capture_gives_its_complete_frames(loopback: Loopback, tmp_path: Path) -> None:
    data = gzip.compress(loopback.path("lo.pcap").read_bytes())
    out = tmp_path / "cut.pcap.gz"
    out.write_bytes(data[: len(data) * 2 // 3])
    stats = CaptureStats()
    frames = list(open_capture(str(out), stats))
    original = list(open_capture(str(loopback.path("lo.pcap"))))
    assert 0 < len(frames) < len(original)
    assert [f.data for f in frames] == [f.data for f in original[: len(frames)]]
    assert any("gzip data is cut short" in w for w in stats.warnings), stats.warnings


# ---------------------------------------------------------------------------------------------
# tcpdump killed, rotated sets


def test_a_killed_tcpdump_leaves_a_cut_record_that_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """tcpdump without -U writes through a stdio buffer: SIGKILL leaves the file cut at a buffer
    boundary, mid-record. Every complete frame is read, as tshark reads them, and a warning says
    the last record is incomplete."""
    port = free_udp_port()
    out = tmp_path / "killed.pcap"
    argv = ["tcpdump", "-i", "lo", "-n", "-Z", "root", "-w", str(out), f"udp port {port}"]
    process = Process("tcpdump-killed", argv, cwd=tmp_path, stdout=tmp_path / "k.out", stderr=tmp_path / "k.err")
    process.start()
    try:
        wait_for(lambda: "listening on" in (tmp_path / "k.err").read_text(), timeout=15, what="tcpdump")
        messages = [("4", sip_text(f"killed-{i}@kamlog.test", body=700)) for i in range(200)]
        send_udp(port, messages)
        wait_for(lambda: out.exists() and out.stat().st_size >= 16384, timeout=15, what="tcpdump to flush")
        time.sleep(0.2)
    finally:
        process.stop(signal.SIGKILL, timeout=10)
    size = out.stat().st_size
    stats = CaptureStats()
    frames = list(open_capture(str(out), stats))
    consumed = 24 + sum(16 + len(f.data) for f in frames)
    assert frames and [f.number for f in frames] == list(range(1, len(frames) + 1))
    if consumed < size:  # cut mid-record (almost always: the buffer is 4 or 8 KiB)
        assert stats.skipped_blocks == 1
        assert any("the last record" in w and "incomplete" in w for w in stats.warnings), stats.warnings
    ref = tshark_fields(out, ("frame.number", "frame.time_epoch", "udp.payload"), cut=consumed < size)
    assert [(int(r["frame.number"]), epoch_ns(r["frame.time_epoch"]), r["udp.payload"]) for r in ref] == \
           [(f.number, f.ts_ns, p.data.hex()) for f, p in zip(frames, decode_all(frames)[0])]


def _sent_in_time_order(paths: list[str]) -> tuple[list, CaptureStats]:
    stats = CaptureStats()
    frames = list(read_captures(paths, stats))
    return frames, stats


def test_rotated_sets_merge_by_time(tmp_path: Path) -> None:
    """tcpdump -C (cap.pcap, cap.pcap1, cap.pcap2, ...) and -G with strftime names: a directory
    or a glob of the set reads as one capture in time order, whatever order the files are
    given in, equal to what mergecap makes of the set."""
    port = free_udp_port()
    size_dir, time_dir = tmp_path / "size", tmp_path / "time"
    size_dir.mkdir()
    time_dir.mkdir()
    bpf = f"udp port {port}"
    by_size = tcpdump(tmp_path, "rot-size", size_dir / "cap.pcap", bpf, "-C", "1")
    by_time = tcpdump(tmp_path, "rot-time", time_dir / "cap-%Y%m%d-%H%M%S.pcap", bpf, "-G", "1")
    sent = []
    with Captures(by_size, by_time):
        for burst in range(4):
            batch = [("4" if i % 3 else "6", sip_text(f"rot-{burst}-{i}@kamlog.test", body=3000))
                     for i in range(250)]
            send_udp(port, batch)
            sent += batch
            time.sleep(1.1)
    for directory, pattern in ((size_dir, "cap.pcap*"), (time_dir, "cap-*.pcap")):
        files = expand_capture_paths([str(directory)])
        assert len(files) >= 3, files
        assert expand_capture_paths([str(directory / pattern)]) == files
        frames, stats = _sent_in_time_order(files)
        assert stats.files == len(files) and stats.warnings == []
        times = [f.ts_ns for f in frames]
        assert times == sorted(times)
        payloads, _ = decode_all(frames)
        assert sorted(p.data for p in payloads) == sorted(d for _f, d in sent)
        reverse, _ = _sent_in_time_order(list(reversed(files)))
        assert [(f.file, f.number) for f in reverse] == [(f.file, f.number) for f in frames]
        merged = tmp_path / f"merged-{directory.name}.pcap"
        run("mergecap", "-F", "pcap", "-w", str(merged), *files)
        ref = tshark_fields(merged, ("frame.time_epoch", "udp.payload"))
        assert [(epoch_ns(r["frame.time_epoch"]), r["udp.payload"]) for r in ref] == \
               [(p.ts_ns, p.data.hex()) for p in payloads]
    size_files = expand_capture_paths([str(size_dir)])
    assert [os.path.basename(f) for f in size_files][:3] == ["cap.pcap", "cap.pcap1", "cap.pcap2"]
