"""What `kamlog correlate` reads: captures and logs told apart by content, rotated sets in
order, compressed logs with offsets in their decompressed text, hostile files."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import pytest

from kamlog.correlate.inputs import LogReader, classify, is_capture, rotation_order
from kamlog.errors import SourceError
from kamlog.parsing.options import ParseOptions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_LOG = ROOT / "examples" / "kamailio.log"
EXAMPLE_PCAP = ROOT / "examples" / "capture.pcap"


class TestRotationOrder:
    def test_a_numbered_set_is_read_oldest_first(self) -> None:
        given = ["k.log", "k.log.1", "k.log.10.gz", "k.log.2.gz"]
        assert rotation_order(given) == ["k.log.10.gz", "k.log.2.gz", "k.log.1", "k.log"]

    def test_dateext_names_are_read_by_date(self) -> None:
        given = ["k.log", "k.log-20261128.gz", "k.log-20261127.gz"]
        assert rotation_order(given) == ["k.log-20261127.gz", "k.log-20261128.gz", "k.log"]

    def test_unrelated_files_keep_their_order(self) -> None:
        assert rotation_order(["b.log", "a.log"]) == ["b.log", "a.log"]


class TestClassify:
    def test_files_without_flags_are_told_apart_by_content(self, tmp_path: Path) -> None:
        pcap_named_log = tmp_path / "traffic.log"
        shutil.copy(EXAMPLE_PCAP, pcap_named_log)
        gz_pcap = tmp_path / "cap.gz"
        gz_pcap.write_bytes(gzip.compress(EXAMPLE_PCAP.read_bytes()))
        inputs = classify([], [], [str(EXAMPLE_LOG), str(pcap_named_log), str(gz_pcap)])
        assert inputs.captures == [str(pcap_named_log), str(gz_pcap)]
        assert inputs.logs == [str(EXAMPLE_LOG)]
        assert is_capture(str(gz_pcap)) and not is_capture(str(EXAMPLE_LOG))

    def test_a_missing_file_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(SourceError, match="does not exist"):
            classify([], [str(tmp_path / "nope.log")], [])

    def test_a_glob_that_matches_nothing_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(SourceError, match="no file matches"):
            classify([], [str(tmp_path / "*.log")], [])


class TestLogReader:
    @pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
    def test_a_compressed_log_gives_the_same_events_with_decompressed_offsets(self, tmp_path: Path, compress) -> None:
        packed = tmp_path / "kamailio.log.1.z"
        packed.write_bytes(compress(EXAMPLE_LOG.read_bytes()))
        plain = [(e.offset, e.message) for e in LogReader([str(EXAMPLE_LOG)], ParseOptions())]
        unpacked = [(e.offset, e.message) for e in LogReader([str(packed)], ParseOptions())]
        assert unpacked == plain and len(plain) > 50
        text = EXAMPLE_LOG.read_bytes()
        assert all(text[offset:].split(b"\n", 1)[0].decode().endswith(message) for offset, message in plain[:20])

    def test_garbage_lines_are_kept_as_unparsed_events_and_counted(self, tmp_path: Path) -> None:
        log = tmp_path / "mixed.log"
        good = EXAMPLE_LOG.read_bytes()
        log.write_bytes(good + b"\xff\xfe garbage \x00 line\n" + b"x" * 3_000_000 + b"\n")
        reader = LogReader([str(log)], ParseOptions())
        events = list(reader)
        assert sum(1 for e in events if e.error) == 2
        assert reader.stats[str(log)].unparsed == 2

    def test_a_log_with_no_newline_longer_than_the_limit_is_read_in_pieces(self, tmp_path: Path) -> None:
        log = tmp_path / "one-line.log"
        log.write_bytes(EXAMPLE_LOG.read_bytes()[:4000].rsplit(b"\n", 1)[0] + b"\n" + b"y" * (17 << 20))
        events = list(LogReader([str(log)], ParseOptions()))
        assert events and events[-1].error is not None

    def test_a_log_that_is_not_kamailios_is_a_clear_error(self, tmp_path: Path) -> None:
        log = tmp_path / "other.log"
        log.write_text("hello\nworld\n")
        with pytest.raises(SourceError, match="cannot tell the log format"):
            list(LogReader([str(log)], ParseOptions()))


class TestBinaryInputs:
    def test_a_binary_file_that_is_no_capture_is_named_as_neither(self, tmp_path: Path) -> None:
        junk = tmp_path / "junk.bin"
        junk.write_bytes(bytes(range(256)) * 8)
        with pytest.raises(SourceError, match="junk.bin is neither a capture .pcap, pcapng. nor a text log"):
            classify([], [], [str(junk)])
