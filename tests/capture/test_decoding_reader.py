"""The pcap reader that decodes the common case in its own loop (open_capture_decoding) gives
what reading frames and decoding them gives: the same payloads, counts, warnings and errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamlog.capture.decode import PacketDecoder
from kamlog.capture.files import open_capture, open_capture_decoding
from kamlog.capture.pcap import CaptureStats
from kamlog.errors import CaptureError

from .test_hostile import SAMPLE, SMALL, alarm

CORPUS_CAPTURES = ("capture.pcap", "capture-any.pcap", "capture-tcp.pcap", "sipdump-1.pcap", "capture.pcapng")


def outcome(path: Path, decoding: bool) -> tuple[object, ...]:
    """Everything a reader and the decoder say about a file."""
    stats = CaptureStats()
    decoder = PacketDecoder()
    payloads = []
    error = None
    with alarm(10):
        try:
            frames = open_capture_decoding(str(path), stats) if decoding else open_capture(str(path), stats)
            payloads = list(decoder.payloads(frames))
            payloads += decoder.finish()
        except CaptureError as exc:
            error = str(exc)
    return payloads, error, stats, decoder.stats, decoder.notes()


def same_outcome(path: Path) -> tuple[object, ...]:
    decoded = outcome(path, decoding=True)
    assert decoded == outcome(path, decoding=False)
    return decoded


class TestRealCaptures:
    def test_the_example_capture(self):
        payloads, error, *_ = same_outcome(SAMPLE)
        assert error is None and len(payloads) == 44  # tshark -Y sip counts 44 messages

    @pytest.mark.parametrize("name", CORPUS_CAPTURES)
    def test_the_corpus_captures(self, corpus: Path, name: str):
        payloads, error, *_ = same_outcome(corpus / name)
        assert error is None and payloads


class TestDamagedCaptures:
    @pytest.mark.parametrize("kind", sorted(SMALL))
    def test_a_capture_cut_at_every_length(self, tmp_path: Path, kind: str):
        data = SMALL[kind]
        for cut in range(len(data)):
            (tmp_path / "x.cap").write_bytes(data[:cut])
            same_outcome(tmp_path / "x.cap")

    @pytest.mark.parametrize("kind", ["pcap", "pcap-ns-be"])
    def test_every_record_length_set_to_odd_values(self, tmp_path: Path, kind: str):
        data = SMALL[kind]
        order = ">" if kind.endswith("be") else "<"
        pos = 24
        while pos < len(data):
            for field in (pos + 8, pos + 12):
                value = struct.unpack_from(order + "I", data, field)[0]
                for new in {0, 1, 27, 41, 42, value - 1, value + 1, 0xFFFFFFFF}:
                    broken = bytearray(data)
                    struct.pack_into(order + "I", broken, field, new & 0xFFFFFFFF)
                    (tmp_path / "x.cap").write_bytes(bytes(broken))
                    same_outcome(tmp_path / "x.cap")
            pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(["pcap", "pcap-ns-be"]),
           st.lists(st.tuples(st.integers(24, 2000), st.integers(0, 255)), min_size=1, max_size=6))
    def test_bytes_changed_anywhere_in_the_frames(self, tmp_path: Path, kind: str, changes: list[tuple[int, int]]):
        """IP and UDP header fields that lie, versions, protocols, fragment bits: both ways agree."""
        data = bytearray(SMALL[kind])
        for offset, value in changes:
            data[offset % len(data)] = value
        (tmp_path / "x.cap").write_bytes(bytes(data))
        same_outcome(tmp_path / "x.cap")
