"""The rotating-capture directory: closed captures offered once, taken once, across restarts."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kamlog.capture.packets import Frame
from kamlog.capture.writer import write_pcap
from kamlog.errors import RegistryError
from kamlog.sip import SipMessage
from kamlog.sources.capture_dir import CaptureDirectory, CaptureGone, ClosedCapture, capture_reader
from kamlog.sources.pcap import CaptureReader
from kamlog.store.documents import Identities
from tests.capture.packets import ethernet, ipv4_udp
from tests.corpus.runners import LOOPBACK, Process, Sipp, file_settled, free_ports, wait_for

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def options(n: int) -> bytes:
    return (f"OPTIONS sip:kamailio@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{n}\r\n"
            f"From: <sip:probe@kamlog.test>;tag={n}\r\nTo: <sip:kamailio@127.0.0.1>\r\n"
            f"Call-ID: probe-{n}@kamlog.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def frames(first: int, count: int) -> list[Frame]:
    out = []
    for n in range(first, first + count):
        data = ethernet(ipv4_udp("127.0.0.1", "127.0.0.1", 5070, 5060, options(n)))
        out.append(Frame("", n - first + 1, T0 + n * SECOND // 100, 9, 1, data, len(data)))
    return out


def pcap_bytes(first: int, count: int) -> bytes:
    out = io.BytesIO()
    write_pcap(out, frames(first, count))
    return out.getvalue()


def capture(path: Path, first: int = 0, count: int = 3, *, mtime: int = 0, data: bytes | None = None) -> Path:
    """Write a pcap of `count` OPTIONS (numbered from `first`) with mtime T0 + `mtime` seconds."""
    path.write_bytes(pcap_bytes(first, count) if data is None else data)
    touch(path, mtime)
    return path


def append(path: Path, first: int, count: int, *, mtime: int) -> None:
    with open(path, "ab") as f:
        f.write(pcap_bytes(first, count)[24:])
    touch(path, mtime)


def touch(path: Path, mtime: int) -> None:
    os.utime(path, ns=(T0 + mtime * SECOND, T0 + mtime * SECOND))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def watcher(spool: Path, clock: Clock, **kw: int) -> CaptureDirectory:
    return CaptureDirectory(str(spool / "sip*.pcap*"), str(spool.parent / "state.json"), closed_after=60,
                            clock=clock, **kw)


def names(captures: list[ClosedCapture]) -> list[str]:
    return [os.path.basename(c.path) for c in captures]


class TestClosing:
    def test_a_file_is_closed_once_a_newer_capture_exists(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        watch = watcher(spool, clock)
        assert watch.poll() == []
        capture(spool / "sip.pcap1", 10, mtime=2)
        assert names(watch.poll()) == ["sip.pcap"]

    def test_the_newest_file_is_taken_once_unchanged_for_closed_after(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap")
        watch = watcher(spool, clock)
        assert watch.poll() == []
        clock.now += 59.9
        assert watch.poll() == []
        clock.now += 0.1
        assert names(watch.poll()) == ["sip.pcap"]

    def test_a_change_starts_the_wait_again(self, spool: Path, clock: Clock) -> None:
        path = capture(spool / "sip.pcap")
        watch = watcher(spool, clock)
        watch.poll()
        clock.now += 50
        append(path, 3, 1, mtime=50)
        assert watch.poll() == []
        clock.now += 59
        assert watch.poll() == []
        clock.now += 1
        assert [c.size for c in watch.poll()] == [path.stat().st_size]

    def test_files_with_the_same_mtime_do_not_close_each_other(self, spool: Path, clock: Clock) -> None:
        # The kernel's coarse mtime clock gives a file closed and the next one opened in the same
        # tick the same mtime: which one tcpdump still writes cannot be told.
        capture(spool / "sip.pcap9", mtime=5)
        capture(spool / "sip.pcap10", 10, mtime=5)
        watch = watcher(spool, clock)
        assert watch.poll() == []
        append(spool / "sip.pcap10", 13, 1, mtime=6)
        assert names(watch.poll()) == ["sip.pcap9"]

    def test_an_empty_newer_file_closes_the_one_before_and_is_not_offered_itself(
            self, spool: Path, clock: Clock) -> None:
        # tcpdump without -U: the next file stays empty until its buffer fills.
        capture(spool / "sip.pcap", mtime=1)
        (spool / "sip.pcap1").write_bytes(b"")
        touch(spool / "sip.pcap1", 2)
        watch = watcher(spool, clock)
        assert names(watch.poll()) == ["sip.pcap"]
        clock.now += 3600
        assert watch.poll() == []

    def test_a_file_being_compressed_is_not_a_newer_capture(self, spool: Path, clock: Clock) -> None:
        # tcpdump -z gzip: gzip writes sip.pcap1.gz (mtime now) while tcpdump writes sip.pcap2.
        capture(spool / "sip.pcap1", mtime=1)
        capture(spool / "sip.pcap2", 10, mtime=2)
        (spool / "sip.pcap1.gz").write_bytes(gzip.compress((spool / "sip.pcap1").read_bytes())[:30])
        touch(spool / "sip.pcap1.gz", 3)
        watch = watcher(spool, clock)
        assert names(watch.poll()) == ["sip.pcap1"]

    def test_a_file_that_is_not_a_capture_is_not_a_newer_capture(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        (spool / "sip.pcap.txt").write_text("notes\n")
        touch(spool / "sip.pcap.txt", 2)
        assert watcher(spool, clock).poll() == []


class TestOffering:
    def test_captures_come_oldest_first_by_mtime_then_natural_name(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap10", 0, mtime=1)
        capture(spool / "sip.pcap2", 10, mtime=1)
        capture(spool / "sip.pcap", 20, mtime=0)
        capture(spool / "sip.pcap11", 30, mtime=2)
        assert names(watcher(spool, clock).poll()) == ["sip.pcap", "sip.pcap2", "sip.pcap10"]

    def test_a_capture_offered_is_not_offered_again_before_it_is_taken(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        assert names(watch.poll()) == ["sip.pcap"]
        assert watch.poll() == []

    def test_a_released_capture_is_offered_again(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.release(offered)
        assert watch.poll() == [offered]

    def test_a_taken_capture_is_not_offered_again(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.taken(offered)
        clock.now += 3600
        assert names(watch.poll()) == ["sip.pcap1"]
        assert (watch.counters.seen, watch.counters.taken) == (2, 1)

    def test_a_capture_that_grew_after_it_was_taken_is_offered_again_with_its_new_size(
            self, spool: Path, clock: Clock) -> None:
        path = capture(spool / "sip.pcap")
        watch = watcher(spool, clock)
        watch.poll()
        clock.now += 60
        [first] = watch.poll()
        watch.taken(first)
        append(path, 3, 2, mtime=100)
        capture(spool / "sip.pcap1", 10, mtime=101)
        [again] = watch.poll()
        assert (again.path, again.size) == (first.path, path.stat().st_size)
        assert again.size > first.size
        assert (again.key, again.fingerprint, again.identity) == (first.key, first.fingerprint, first.identity)

    def test_a_capture_that_grew_while_offered_is_offered_again_once_taken(self, spool: Path, clock: Clock) -> None:
        path = capture(spool / "sip.pcap")
        watch = watcher(spool, clock)
        watch.poll()
        clock.now += 60
        [first] = watch.poll()
        append(path, 3, 2, mtime=100)
        assert watch.poll() == []
        clock.now += 60
        assert watch.poll() == []
        watch.taken(first)
        [again] = watch.poll()
        assert again.size == path.stat().st_size

    def test_a_capture_first_taken_shorter_than_512_bytes_keeps_its_identity_as_it_grows(
            self, spool: Path, clock: Clock) -> None:
        path = capture(spool / "sip.pcap", count=0)  # the header only: a quiet period
        watch = watcher(spool, clock)
        watch.poll()
        clock.now += 60
        [first] = watch.poll()
        assert first.fingerprint.startswith("24:")
        watch.taken(first)
        append(path, 0, 3, mtime=100)
        assert watch.poll() == []
        clock.now += 60
        [again] = watch.poll()
        assert (again.fingerprint, again.identity) == (first.fingerprint, first.identity)

    def test_header_only_captures_do_not_share_an_identity(self, spool: Path, clock: Clock) -> None:
        # Every file one tcpdump opens starts with the same 24 bytes: an identity made of them
        # alone would give frame 1 of two captures the same document id.
        capture(spool / "sip.pcap", count=0, mtime=1)
        capture(spool / "sip.pcap1", count=0, mtime=2)
        capture(spool / "sip.pcap2", count=0, mtime=3)
        a, b = watcher(spool, clock).poll()
        assert a.fingerprint == b.fingerprint and a.identity != b.identity

    def test_a_file_deleted_before_it_was_taken_is_just_gone(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        (spool / "sip.pcap").unlink()
        (spool / "sip.pcap1").unlink()
        clock.now += 3600
        assert watch.poll() == []
        with pytest.raises(CaptureGone, match="sip.pcap cannot be read any more"):
            capture_reader(offered)
        watch.release(offered)
        assert watch.poll() == []


class TestReusedNames:
    def test_a_ring_name_rewritten_in_place_is_a_new_capture(self, spool: Path, clock: Clock) -> None:
        # tcpdump -C -W reopens sip.pcap0 with fopen("w"): same inode, new content.
        capture(spool / "sip.pcap0", 0, mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [old] = watch.poll()
        watch.taken(old)
        with open(spool / "sip.pcap0", "r+b") as f:
            f.truncate(0)
            f.write(pcap_bytes(20, 3))
        touch(spool / "sip.pcap0", 3)
        capture(spool / "sip.pcap1", 30, mtime=4)
        [new] = watch.poll()
        assert new.path == old.path and new.key == old.key
        assert new.fingerprint != old.fingerprint and new.identity != old.identity

    def test_a_name_given_to_a_new_file_is_a_new_capture(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap0", 0, mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [old] = watch.poll()
        watch.taken(old)
        (spool / "sip.pcap0").unlink()
        capture(spool / "sip.pcap0", 20, mtime=3)
        capture(spool / "sip.pcap1", 30, mtime=4)
        [new] = watch.poll()
        assert new.path == old.path and new.fingerprint != old.fingerprint


class TestSkipped:
    def test_a_file_that_is_not_a_capture_is_skipped_and_counted_once(self, spool: Path, clock: Clock) -> None:
        (spool / "sip.pcap.txt").write_text("captured on node 2\n")
        watch = watcher(spool, clock)
        for _ in range(3):
            clock.now += 60
            assert watch.poll() == []
        assert watch.counters.skipped == 1
        assert watch.counters.reasons == {
            str(spool / "sip.pcap.txt"): "it is not a pcap or pcapng capture (it starts with 63 61 70 74 75 72 65 64)"}

    def test_a_corrupt_compressed_file_is_skipped_as_unreadable(self, spool: Path, clock: Clock) -> None:
        (spool / "sip.pcap3.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
        watch = watcher(spool, clock)
        clock.now += 60
        assert watch.poll() == []
        assert watch.counters.skipped == 1
        assert "cannot be read" in watch.counters.reasons[str(spool / "sip.pcap3.gz")]


class TestCompressed:
    def test_a_gzip_capture_is_offered_and_read(self, spool: Path, clock: Clock) -> None:
        (spool / "sip.pcap.gz").write_bytes(gzip.compress(pcap_bytes(0, 3)))
        touch(spool / "sip.pcap.gz", 1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        [offered] = watcher(spool, clock).poll()
        assert offered.path.endswith("sip.pcap.gz")
        assert [m.call_id for m in capture_reader(offered).records()] == [f"probe-{n}@kamlog.test" for n in range(3)]

    def test_a_file_still_being_compressed_is_not_offered(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap1", mtime=1)
        (spool / "sip.pcap1.gz").write_bytes(gzip.compress((spool / "sip.pcap1").read_bytes()))
        touch(spool / "sip.pcap1.gz", 1)
        capture(spool / "sip.pcap2", 10, mtime=2)
        assert names(watcher(spool, clock).poll()) == ["sip.pcap1"]

    def test_the_gzip_copy_of_a_capture_taken_is_not_offered(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap1", mtime=1)
        capture(spool / "sip.pcap2", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.taken(offered)
        gzip_like_tcpdump(spool / "sip.pcap1")
        assert watch.poll() == []
        assert watch.counters.copies == 1
        assert watcher(spool, clock).poll() == []  # and after a restart

    def test_a_gzip_copy_waits_while_its_original_is_offered(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap1", mtime=1)
        capture(spool / "sip.pcap2", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        gzip_like_tcpdump(spool / "sip.pcap1")
        assert watch.poll() == []
        watch.taken(offered)
        assert watch.poll() == []
        assert watch.counters.copies == 1

    def test_a_gzip_copy_holding_more_than_was_taken_is_offered(self, spool: Path, clock: Clock) -> None:
        path = capture(spool / "sip.pcap1", mtime=1)
        watch = watcher(spool, clock)
        watch.poll()
        clock.now += 60
        [offered] = watch.poll()
        watch.taken(offered)
        append(path, 3, 2, mtime=100)
        capture(spool / "sip.pcap2", 10, mtime=101)
        gzip_like_tcpdump(path)
        assert names(watch.poll()) == ["sip.pcap1.gz"]


def gzip_like_tcpdump(path: Path) -> None:
    """What `tcpdump -z gzip` runs: sip.pcap1 -> sip.pcap1.gz, mtime kept, the original removed."""
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    shutil.copystat(path, target)
    path.unlink()


class TestState:
    def test_taken_is_written_atomically_before_it_returns(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.taken(offered)
        state = json.loads((spool.parent / "state.json").read_text())
        assert [(e["path"], e["size"], e["fingerprint"]) for e in state["entries"]] == [
            (offered.path, offered.size, offered.fingerprint)]
        assert not (spool.parent / "state.json.tmp").exists()

    def test_a_new_directory_on_the_same_state_takes_nothing_twice(self, spool: Path, clock: Clock) -> None:
        for n in range(4):
            capture(spool / f"sip.pcap{n or ''}", 10 * n, mtime=n)
        watch = watcher(spool, clock)
        offered = watch.poll()
        assert names(offered) == ["sip.pcap", "sip.pcap1", "sip.pcap2"]
        for c in offered[:2]:
            watch.taken(c)
        restarted = watcher(spool, clock)
        [again] = restarted.poll()  # offered, never taken: offered again
        assert names([again]) == ["sip.pcap2"]
        restarted.taken(again)
        clock.now += 60
        [last] = restarted.poll()
        assert names([last]) == ["sip.pcap3"]
        restarted.taken(last)
        assert watcher(spool, clock).poll() == []

    def test_entries_of_files_no_longer_present_are_dropped(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.taken(offered)
        (spool / "sip.pcap").unlink()
        watch.poll()
        assert json.loads((spool.parent / "state.json").read_text())["entries"] == []

    def test_an_entry_stays_while_its_file_is_there_even_if_the_listing_misses_it(
            self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        [offered] = watch.poll()
        watch.taken(offered)
        watch.pattern = str(spool / "nothing*")
        watch.poll()
        assert len(json.loads((spool.parent / "state.json").read_text())["entries"]) == 1

    def test_at_most_max_entries_are_kept_the_oldest_taken_dropped(self, spool: Path, clock: Clock) -> None:
        for n in range(4):
            capture(spool / f"sip.pcap{n}", 10 * n, mtime=n)
        watch = watcher(spool, clock, max_entries=2)
        for c in watch.poll():
            watch.taken(c)
        entries = json.loads((spool.parent / "state.json").read_text())["entries"]
        assert [os.path.basename(e["path"]) for e in entries] == ["sip.pcap1", "sip.pcap2"]

    def test_a_corrupt_state_file_is_an_error_naming_it(self, spool: Path, clock: Clock) -> None:
        (spool.parent / "state.json").write_text("{not json")
        with pytest.raises(RegistryError, match="cannot read the capture state .*state.json"):
            watcher(spool, clock)

    def test_the_state_file_is_never_offered_even_when_the_pattern_matches_it(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = CaptureDirectory(str(spool / "sip*"), str(spool / "sip.state"), clock=clock)
        [offered] = watch.poll()
        watch.taken(offered)
        clock.now += 3600
        assert names(watch.poll()) == ["sip.pcap1"] and watch.counters.skipped == 0


class TestReading:
    def test_the_records_of_a_closed_capture_name_its_path_and_frame(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        [offered] = watcher(spool, clock).poll()
        records = list(capture_reader(offered).records())
        assert [(r.payload.file, r.payload.frame) for r in records] == [(offered.path, n) for n in (1, 2, 3)]

    def test_a_last_record_cut_short_is_read_up_to_the_cut_and_noted(self, spool: Path, clock: Clock) -> None:
        # tcpdump killed in the middle of a write.
        capture(spool / "sip.pcap", data=pcap_bytes(0, 3)[:-40], mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        [offered] = watcher(spool, clock).poll()
        reader = capture_reader(offered)
        assert len(list(reader.records())) == 2
        assert any("the last record (frame 3, at byte 588) is incomplete" in note for note in reader.notes())

    def test_a_name_with_glob_characters_is_read_as_it_is(self, tmp_path: Path, clock: Clock) -> None:
        capture(tmp_path / "sip[1].pcap", mtime=1)
        capture(tmp_path / "sip[2].pcap", 10, mtime=2)
        [offered] = CaptureDirectory(str(tmp_path / "*.pcap"), str(tmp_path / "state"), clock=clock).poll()
        assert {r.payload.file for r in capture_reader(offered).records()} == {str(tmp_path / "sip[1].pcap")}

    def test_the_identity_is_the_one_kamlog_index_gives_the_same_file(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap", mtime=1)
        (spool / "sip.pcap1.gz").write_bytes(gzip.compress(pcap_bytes(10, 3)))
        touch(spool / "sip.pcap1.gz", 2)
        capture(spool / "sip.pcap2", 20, mtime=3)
        offered = watcher(spool, clock).poll()
        assert len(offered) == 2
        assert [c.identity for c in offered] == [Identities()(c.path, True) for c in offered]

    def test_the_store_is_told_the_identity_of_a_reused_name(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap0", 0, mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        watch = watcher(spool, clock)
        identities = Identities()
        [old] = watch.poll()
        capture_reader(old, identities)
        assert identities(old.path, True) == old.identity
        watch.taken(old)
        capture(spool / "sip.pcap0", 20, mtime=3)
        capture(spool / "sip.pcap1", 30, mtime=4)
        [new] = watch.poll()
        capture_reader(new, identities)
        assert identities(new.path, True) == new.identity != old.identity

    def test_a_capture_overwritten_before_it_is_read_is_gone(self, spool: Path, clock: Clock) -> None:
        capture(spool / "sip.pcap0", 0, mtime=1)
        capture(spool / "sip.pcap1", 10, mtime=2)
        [offered] = watcher(spool, clock).poll()
        with open(spool / "sip.pcap0", "r+b") as f:
            f.truncate(0)
            f.write(pcap_bytes(20, 3))
        with pytest.raises(CaptureGone, match="no longer holds the capture"):
            capture_reader(offered)


# ---------------------------------------------------------------------------------------------
# a real tcpdump rotating its files while real SIP traffic flows


def tshark_frames(path: Path, port: int) -> list[tuple[str, str]]:
    """(epoch time, Call-ID or "") of each frame tshark reads in the file, SIP forced on `port`."""
    done = subprocess.run(["tshark", "-n", "-r", str(path), "-d", f"udp.port=={port},sip", "-T", "fields",
                           "-e", "frame.time_epoch", "-e", "sip.Call-ID"],
                          capture_output=True, text=True, timeout=120, check=True)
    return [(line.split("\t")[0], line.split("\t")[1]) for line in done.stdout.splitlines()]


@dataclass
class Taking:
    """A service stand-in: polls, reads what is offered, takes it; restarts its CaptureDirectory
    once midway (a new one on the same state file)."""

    pattern: str
    state: str
    clock: Clock
    watch: CaptureDirectory = field(init=False)
    offered: list[ClosedCapture] = field(default_factory=list)
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    messages: list[SipMessage] = field(default_factory=list)
    gone: list[ClosedCapture] = field(default_factory=list)
    restarted: bool = False

    def __post_init__(self) -> None:
        self.watch = CaptureDirectory(self.pattern, self.state, closed_after=60, clock=self.clock)

    def poll(self) -> list[ClosedCapture]:
        offered = self.watch.poll()
        for capture in offered:
            try:
                reader = capture_reader(capture)
            except CaptureGone:
                self.gone.append(capture)
                self.watch.release(capture)
                continue
            self.frames += [(f.ts_ns, f.data) for f in reader.frames()]
            self.messages += [m for m in reader.records() if isinstance(m, SipMessage)]
            self.watch.taken(capture)
        self.offered += offered
        if self.offered and not self.restarted:
            self.restarted = True
            self.watch = CaptureDirectory(self.pattern, self.state, closed_after=60, clock=self.clock)
        return offered


#: Enough calls (about 4.5 kB each) for three files of `-C 1` (a million bytes).
CALLS = 1200


@pytest.mark.realworld
@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("tshark") is None
                    or shutil.which("sipp") is None, reason="needs tcpdump, tshark and sipp")
class TestWithRealTcpdump:
    def test_a_ring_of_reused_names_is_taken_capture_by_capture(self, tmp_path: Path) -> None:
        # tcpdump -C 1 -W 3 rewrites sip.pcap0, sip.pcap1, sip.pcap2 in turn, in place.
        spool = tmp_path / "spool"
        spool.mkdir()
        uas_port, uac_port = free_ports(2)
        clock = Clock()
        service = Taking(str(spool / "sip*.pcap*"), str(tmp_path / "state.json"), clock)
        err = tmp_path / "tcpdump.stderr"
        tcpdump = Process("tcpdump", ["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root",
                                      "-C", "1", "-W", "3", "-w", str(spool / "sip.pcap"), f"udp port {uas_port}"],
                          cwd=tmp_path, stdout=tmp_path / "tcpdump.stdout", stderr=err)
        tcpdump.start()
        try:
            wait_for(lambda: "listening on" in err.read_text(), timeout=10, what="tcpdump to capture")
            with Sipp(tmp_path, "uas-answer.xml", local_port=uas_port, calls=None, timeout=300, name="uas"):
                uac = Sipp(tmp_path, "uac-call.xml", local_port=uac_port, remote=(LOOPBACK, uas_port),
                           keys={"callee": "answer"}, call_id="ring-%u@kamlog.test", calls=2 * CALLS, rate=200,
                           timeout=60, name="uac")
                uac.start()
                while uac.process is not None and uac.process.running():
                    service.poll()
                    time.sleep(0.05)
                assert uac.finish().ok
            file_settled(sorted(spool.iterdir()))
            service.poll()
        finally:
            tcpdump.stop(signal.SIGINT)
        clock.now += 60
        service.poll()

        assert sorted(p.name for p in spool.iterdir()) == ["sip.pcap0", "sip.pcap1", "sip.pcap2"]
        assert len(service.offered) > 3 and service.gone == []
        assert len({(c.path, c.fingerprint) for c in service.offered}) == len(service.offered)
        assert len({c.identity for c in service.offered}) == len(service.offered)
        captured = int(re.search(r"(\d+) packets? captured", err.read_text())[1])  # type: ignore[index]
        assert len(service.frames) == len(set(service.frames)) == captured
        assert len({m.call_id for m in service.messages}) == 2 * CALLS

    @pytest.mark.parametrize("rotation", [["-C", "1", "-w", "sip.pcap"], ["-G", "1", "-w", "sip-%s.pcap"]],
                             ids=["size", "time"])
    def test_every_file_is_taken_once_and_they_hold_every_packet(self, tmp_path: Path, rotation: list[str]) -> None:
        spool = tmp_path / "spool"
        spool.mkdir()
        uas_port, uac_port = free_ports(2)
        clock = Clock()
        service = Taking(str(spool / "sip*.pcap*"), str(tmp_path / "state.json"), clock)
        *options_, name = rotation
        err = tmp_path / "tcpdump.stderr"
        tcpdump = Process("tcpdump", ["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root",
                                      *options_, str(spool / name), f"udp port {uas_port}"],
                          cwd=tmp_path, stdout=tmp_path / "tcpdump.stdout", stderr=err)
        tcpdump.start()
        try:
            wait_for(lambda: "listening on" in err.read_text(), timeout=10, what="tcpdump to capture")
            with Sipp(tmp_path, "uas-answer.xml", local_port=uas_port, calls=None, timeout=300, name="uas"):
                uac = Sipp(tmp_path, "uac-call.xml", local_port=uac_port, remote=(LOOPBACK, uas_port),
                           keys={"callee": "answer"}, call_id="rot-%u@kamlog.test", calls=CALLS, rate=200,
                           timeout=60, name="uac")
                uac.start()
                while uac.process is not None and uac.process.running():
                    service.poll()
                    time.sleep(0.05)
                assert uac.finish().ok
            file_settled(sorted(spool.iterdir()))
            service.poll()
            newest = str(max(spool.iterdir(), key=lambda p: p.stat().st_mtime_ns))
            assert newest not in {c.path for c in service.offered}  # tcpdump has it open
            live = len(service.offered)
        finally:
            tcpdump.stop(signal.SIGINT)
        clock.now += 60
        last = service.poll()
        assert newest in {c.path for c in last}  # taken once tcpdump left it alone long enough
        assert service.poll() == []

        files = sorted(spool.iterdir())
        assert live >= 2 and len(files) >= 3
        assert Counter(c.path for c in service.offered) == Counter(str(p) for p in files)
        # None was taken while tcpdump still wrote it: each file ended as it was when offered.
        assert {c.path: c.size for c in service.offered} == {str(p): p.stat().st_size for p in files}

        captured = int(re.search(r"(\d+) packets? captured", err.read_text())[1])  # type: ignore[index]
        seen = [frame for p in files for frame in tshark_frames(p, uas_port)]
        assert len(service.frames) == len(set(service.frames)) == len(seen) == captured
        assert sum(1 for _ in CaptureReader([str(spool / "sip*.pcap*")]).frames()) == captured
        assert sorted(m.call_id or "" for m in service.messages) == sorted(cid for _, cid in seen)
        assert len({m.call_id for m in service.messages}) == CALLS
        assert len(service.watch.poll()) == 0
