"""Wiring of `kamlog correlate`: inputs -> capture and log readers -> Correlator -> a writer."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from ..errors import SourceError, UsageError
from ..parsing.options import ParseOptions
from ..sources.pcap import CaptureReader
from .attribution import Placed
from .inputs import Inputs, LogReader
from .skew import NO_SKEW, Skew
from .timeline import CallTimeline, Correlator


class Writer(Protocol):
    def call(self, timeline: CallTimeline) -> None: ...
    def unattributed(self, placed: Placed, skew: Skew) -> None: ...
    def close(self, summary: Summary) -> None: ...


@dataclass
class Summary:
    calls: int = 0
    shown: int = 0
    messages: int = 0
    log_events: int = 0
    attribution: dict[str, int] = field(default_factory=dict)
    skew: Skew = NO_SKEW
    notes: list[str] = field(default_factory=list)


class Progress:
    """A one-line progress report on stderr, redrawn at most twice a second (tty only)."""

    def __init__(self, total_bytes: int, enabled: bool) -> None:
        self.total = max(total_bytes, 1)
        self.enabled = enabled
        self._next = 0.0

    def __call__(self, done_bytes: int, calls: int, messages: int, lines: int) -> None:
        now = time.monotonic()
        if not self.enabled or now < self._next:
            return
        self._next = now + 0.5
        share = min(done_bytes / self.total, 1.0)
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\rkamlog: [{bar:<30}] {share:4.0%}  {calls} calls, {messages} SIP messages, {lines} log lines")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self._next:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def correlate(inputs: Inputs, options: ParseOptions, writer: Writer, *,
              call_ids: Sequence[str] = (), on_notice: Callable[[str], None] = lambda text: None,
              progress: bool = False) -> Summary:
    """Correlate the inputs and hand each call (those of `call_ids` only, when given) and each
    unattributed record to `writer`; returns what was done."""
    if not inputs.logs and not inputs.captures:
        raise UsageError("nothing to correlate: give a capture (--pcap FILE) and a log (--log FILE)")
    options.validate()
    reader = CaptureReader(inputs.captures) if inputs.captures else None
    logs = LogReader(inputs.logs, options, on_notice)
    correlator = Correlator()
    wanted = set(call_ids)
    summary = Summary()
    total = sum(_size(p) for p in [*inputs.logs, *(reader.paths if reader else [])])
    bar = Progress(total, progress and total > 50 << 20)
    messages: Iterator[Any] = reader.records() if reader is not None else iter(())
    for n, item in enumerate(correlator.run(messages, logs)):
        if isinstance(item, CallTimeline):
            summary.calls += 1
            if not wanted or wanted.intersection(item.call_ids):
                summary.shown += 1
                writer.call(item)
        elif not wanted:
            writer.unattributed(item, correlator.skew or NO_SKEW)
        if n & 255 == 0:
            # The capture's share is estimated from its messages (a SIP packet is ~500 bytes).
            bar(logs.read_bytes + correlator.messages * 500, summary.calls, correlator.messages, correlator.log_events)
    bar.done()
    summary.messages = correlator.messages
    summary.log_events = correlator.log_events
    summary.attribution = dict(correlator.attributor.counts)
    summary.skew = correlator.skew or NO_SKEW
    if reader is not None:
        summary.notes.extend(reader.notes())
    for path, stats in logs.stats.items():
        if stats.unparsed:
            summary.notes.append(f"{path}: {stats.unparsed} of {stats.lines} lines matched no pattern of the "
                                 "grammar; they are kept as unattributed records")
    if wanted and not summary.shown:
        summary.notes.append(f"no call with the Call-ID {', '.join(sorted(wanted))} in the inputs")
    if abs(summary.skew.offset_ns) > 10_000_000_000 and summary.skew.pairs:
        summary.notes.append(f"the log's clock is {summary.skew.offset_ns / 1e9:+.0f} s off the capture's: "
                             "if that is a time zone, set --tz (calls may then be split in two)")
    writer.close(summary)
    return summary


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def open_output(path: str | None) -> IO[bytes]:
    if path is None or path == "-":
        return sys.stdout.buffer
    try:
        return open(path, "wb")
    except OSError as exc:
        raise SourceError(f"cannot write {path}: {exc.strerror or exc}") from None
