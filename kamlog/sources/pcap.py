"""Capture files -> SIP messages: wires the capture engine (files, link/IP, TCP, HEP) to the SIP
parser, and keeps the counts of everything skipped so that nothing is lost silently."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from ..capture.decode import PacketDecoder
from ..capture.files import CaptureStats, expand_capture_paths, read_captures, read_captures_decoding
from ..capture.hep import HepError, HepLog, decode_hep, is_hep as _maybe_hep
from ..capture.packets import Frame, Payload
from ..capture.tcp import TcpReassembler
from ..capture.writer import write_pcap
from ..errors import SourceError
from ..sip import SipMessage, parse_sip


@dataclass(slots=True)
class CaptureCounts:
    """What did not become a SIP message, and why."""

    sip: int = 0
    not_sip: int = 0
    hep: int = 0
    hep_logs: int = 0
    hep_errors: int = 0
    hep_other: int = 0
    examples: dict[str, str] = field(default_factory=dict)  # reason -> where it first happened

    @property
    def payloads(self) -> int:
        """Every UDP datagram and TCP message looked at."""
        return self.sip + self.hep + self.hep_errors + self.hep_other + self.not_sip


class CaptureReader:
    """SIP messages (and HEP log records) out of capture files, in time order across files."""

    def __init__(self, captures: Sequence[str]) -> None:
        if not captures:
            raise SourceError("no capture given; name pcap or pcapng files (--pcap FILE)")
        self.paths = expand_capture_paths(captures)
        self.counts = CaptureCounts()
        self.file_stats = CaptureStats()
        self.decoder: PacketDecoder | None = None
        self.tcp: TcpReassembler | None = None

    def frames(self, stats: CaptureStats | None = None) -> Iterator[Frame]:
        return read_captures(self.paths, stats if stats is not None else CaptureStats())

    def records(self) -> Iterator[SipMessage | HepLog]:
        """Every SIP message and HEP log record, as their frames come."""
        return self._read(logs=True)

    def messages(self) -> Iterator[SipMessage]:
        """Every SIP message (HEP log records left out)."""
        return cast(Iterator[SipMessage], self._read(logs=False))

    def _read(self, logs: bool) -> Iterator[SipMessage | HepLog]:
        tcp = self.tcp = TcpReassembler()
        decoder = self.decoder = PacketDecoder(tcp=tcp)
        counts = self.counts
        sip = 0
        try:
            for payload in decoder.payloads(read_captures_decoding(self.paths, self.file_stats)):
                # The hot path, inline: SIP, or else see what it is.
                msg = parse_sip(payload)
                if msg is not None:
                    sip += 1
                    yield msg
                    continue
                for record in self._other(payload):
                    if logs or type(record) is SipMessage:
                        yield record
            for payload in decoder.finish():
                for record in self._other(payload):
                    if logs or type(record) is SipMessage:
                        yield record
        finally:
            counts.sip += sip

    def _other(self, payload: Payload) -> Iterator[SipMessage | HepLog]:
        """A payload that is not SIP: HEP (which carries SIP or a log record), or else skipped."""
        counts = self.counts
        data = payload.data
        if _maybe_hep(data):
            try:
                inner = decode_hep(data, payload.file, payload.frame, fallback_ts_ns=payload.ts_ns)
            except HepError as exc:
                counts.hep_errors += 1
                counts.examples.setdefault(f"HEP packet not decoded ({exc})", f"{payload.file} frame {payload.frame}")
                return
            if inner is None:
                counts.hep_other += 1
                return
            counts.hep += 1
            if isinstance(inner, HepLog):
                counts.hep_logs += 1
                yield inner
                return
            payload = inner
            msg = parse_sip(payload)
            if msg is not None:
                counts.sip += 1
                yield msg
                return
        counts.not_sip += 1
        counts.examples.setdefault("not SIP", f"{payload.file} frame {payload.frame}")

    def export(self, call_ids: set[str], output: str) -> tuple[int, int]:
        """Write every frame that carried a message of `call_ids` to `output` (pcap, or pcapng
        when link types differ); returns (frames written, messages)."""
        wanted: set[tuple[str, int]] = set()
        messages = 0
        for msg in self.messages():
            if msg.call_id in call_ids:
                messages += 1
                p = msg.payload
                wanted.add((p.file, p.frame))
                wanted.update((p.file, part) for part in p.parts)
        if not messages:
            raise SourceError(f"no SIP message of {', '.join(sorted(call_ids))} in {', '.join(self.paths)}")
        frames = [f for f in self.frames() if (f.file, f.number) in wanted]
        try:
            with open(output, "wb") as out:
                written = write_pcap(out, frames)
        except OSError as exc:
            raise SourceError(f"cannot write {output}: {exc.strerror}") from None
        return written, messages

    def notes(self) -> list[str]:
        """Sentences for the user about what was skipped (empty when nothing was)."""
        notes = list(self.file_stats.warnings)
        decoder = self.decoder
        if decoder is not None:
            notes += decoder.notes()
        if self.tcp is not None:
            notes += self.tcp.summary()
        c = self.counts
        for reason, where in c.examples.items():
            notes.append(f"{reason}: first at {where}")
        if c.not_sip:
            notes.append(f"{c.not_sip} of {c.payloads} UDP/TCP payloads were not SIP; skipped")
        if c.hep_errors:
            notes.append(f"{c.hep_errors} HEP packets could not be decoded; skipped")
        return notes
