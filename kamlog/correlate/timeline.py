"""One timeline per call from a stream of SIP messages and a stream of placed log records.

Both streams are read together in time order. A call (its Call-ID and the legs linked to it by
X-CID and the like) is finished when both streams have gone `idle_ns` past its last event; it is
then emitted and forgotten, so memory grows with the calls open at once, not with the input.
The clock skew is estimated from the first `skew_calls` finished calls (held back until then)
and applied to every log record's time from then on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast
from dataclasses import dataclass, field
from itertools import count

from ..capture.hep import HepLog
from ..dialogs import Dialog
from ..events import LogEvent
from ..sip import SipMessage
from .attribution import Attributor, MessageKey, Placed, time_ns
from .skew import NO_SKEW, Skew, estimate

IDLE_NS = 32_000_000_000  # SIP's Timer B: a transaction is over by then
SKEW_CALLS = 200


@dataclass(slots=True)
class CallTimeline:
    """Everything seen of one call: its dialogs (one per leg), messages and log records."""

    call_ids: list[str]
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    messages: list[SipMessage] = field(default_factory=list)
    logs: list[Placed] = field(default_factory=list)
    last_ns: int = 0
    skew: Skew = NO_SKEW

    @property
    def call_id(self) -> str:
        return self.call_ids[0]

    @property
    def dialog(self) -> Dialog:
        return self.dialogs.get(self.call_id) or next(iter(self.dialogs.values()), Dialog(self.call_id))

    def events(self) -> list[tuple[int, int, SipMessage | Placed]]:
        """Messages and log records in time order, as (time in the capture's clock, rank,
        event): log time corrected by the skew; a record without a precise time sits right
        after the first message of its call that it was written about (file order kept)."""
        messages = sorted(self.messages, key=lambda m: m.payload.ts_ns)
        out: list[tuple[int, int, SipMessage | Placed]] = [
            (msg.payload.ts_ns, 2 * n, msg) for n, msg in enumerate(messages)]
        first_of = first_packets(messages)
        offset = self.skew.offset_ns
        precise = self.skew.resolution_ns < 1_000_000_000
        floor: int = messages[0].payload.ts_ns if messages else 0
        for placed in sorted(self.logs, key=lambda p: p.seq):
            line_ts = placed.ts_ns
            if line_ts is not None and precise:
                at = line_ts - offset
            else:
                anchor = first_of.get((placed.call_id, placed.key)) if placed.key else None
                if anchor is not None:
                    at = max(floor, anchor)
                else:
                    at = floor if line_ts is None else max(floor, line_ts - offset)
                floor = at
            out.append((at, 2 * placed.seq + 1, placed))
        out.sort(key=lambda item: (item[0], item[1] & 1, item[1]))
        return out


class Correlator:
    """Joins SIP messages and log events into CallTimelines (see the module's docstring)."""

    def __init__(self, idle_ns: int = IDLE_NS, skew_calls: int = SKEW_CALLS,
                 attributor: Attributor | None = None, check_every: int = 1024) -> None:
        self.idle_ns = idle_ns
        self.check_every = check_every  # events between two looks for finished calls
        self.skew_calls = skew_calls
        self.attributor = attributor or Attributor()
        self.open: dict[str, CallTimeline] = {}  # every Call-ID of an open call -> its timeline
        self.unattributed = 0
        self.skew: Skew | None = None
        self._held: list[CallTimeline] = []
        self._held_loose: list[Placed] = []
        self._ready: list[Placed] = []
        self._timed = self._whole_seconds = 0
        self._bounds: list[int] = []
        self._now = 0
        self._next_sweep = 0
        self._holding_since: int | None = None  # live use: since when records wait for the skew
        self.messages = 0
        self.log_events = 0

    def run(self, messages: Iterable[SipMessage | HepLog], logs: Iterable[LogEvent]) -> Iterator[CallTimeline | Placed]:
        """Timelines as they finish, and the log records placed on no call (as Placed). The
        capture's HEP log records (Kamailio's hlog()) are log records of the call they name."""
        msgs = iter(messages)
        events = iter(logs)
        msg = next(msgs, None)
        event = next(events, None)
        event_ns = _event_ns(event)
        steps = 0
        ready = self._ready
        while msg is not None or event is not None:
            if event is not None and (msg is None or event_ns is None or event_ns <= _capture_ns(msg)):
                self.log_events += 1
                for placed in self.attributor.feed(event):
                    self._add_log(placed)
                if event_ns is not None and event_ns > self._now:
                    self._now = event_ns
                event = next(events, None)
                event_ns = _event_ns(event)
            else:
                assert msg is not None
                if type(msg) is HepLog:
                    self._add_log(self.attributor.hep(msg))
                else:
                    self.messages += 1
                    self._add_message(cast(SipMessage, msg))
                msg = next(msgs, None)
            if ready:
                yield from ready
                ready.clear()
            steps += 1
            if steps % self.check_every == 0 and self._now >= self._next_sweep:
                yield from self._sweep(self._now - self.idle_ns)
                self._next_sweep = self._now + self.idle_ns // 8
        yield from self.finish()

    def add(self, records: Iterable[SipMessage | HepLog] = (), logs: Iterable[LogEvent] = ()) -> Iterator[Placed]:
        """Live use (`kamlog collect`): take what arrived since the last call, each stream in
        its own order (the two need not be merged: a call is only finished by `expire`).
        Yields the unattributed records that are ready."""
        for record in records:
            if type(record) is HepLog:
                self._add_log(self.attributor.hep(record))
            else:
                self.messages += 1
                self._add_message(cast(SipMessage, record))
        for event in logs:
            self.log_events += 1
            for placed in self.attributor.feed(event):
                self._add_log(placed)
            event_ns = _event_ns(event)
            if event_ns is not None and event_ns > self._now:
                self._now = event_ns
        yield from self._ready
        self._ready.clear()

    def expire(self, before_ns: int) -> Iterator[CallTimeline | Placed]:
        """Live use: finish the calls with nothing since `before_ns`, settle the log records a
        process left undecided before then, and, once what is held for the skew has waited an
        idle period (too few calls came to estimate it), estimate it from what there is and
        let them go."""
        for placed in self.attributor.expire(before_ns):
            self._add_log(placed)
        yield from self._ready
        self._ready.clear()
        yield from self._sweep(before_ns)
        if self.skew is None and (self._held or self._held_loose):
            if self._holding_since is None:
                self._holding_since = before_ns
            elif before_ns - self._holding_since >= self.idle_ns:
                yield from self._release()

    def finish(self) -> Iterator[CallTimeline | Placed]:
        """The end of the input: every record and call still open."""
        for placed in self.attributor.finish():
            self._add_log(placed)
        yield from self._ready
        self._ready.clear()
        yield from self._sweep(None)
        yield from self._release()

    def _timeline(self, call_id: str, linked: Iterable[str] = ()) -> CallTimeline:
        timeline = self.open.get(call_id)
        for other in linked:
            if other == call_id:
                continue
            found = self.open.get(other)
            if found is None:
                continue
            if timeline is None:
                timeline = found
            elif found is not timeline:
                timeline = self._merge(timeline, found)
        if timeline is None:
            timeline = CallTimeline([call_id])
        if call_id not in timeline.call_ids:
            timeline.call_ids.append(call_id)
        self.open[call_id] = timeline
        return timeline

    def _merge(self, a: CallTimeline, b: CallTimeline) -> CallTimeline:
        """Two open calls turned out to be legs of one (X-CID): the earlier one leads."""
        first, second = sorted((a, b), key=_start)
        first.call_ids.extend(c for c in second.call_ids if c not in first.call_ids)
        first.dialogs.update(second.dialogs)
        first.messages.extend(second.messages)
        first.logs.extend(second.logs)
        first.last_ns = max(first.last_ns, second.last_ns)
        for call_id in second.call_ids:
            self.open[call_id] = first
        return first

    def _add_message(self, msg: SipMessage) -> None:
        call_id = msg.call_id
        if call_id is None:
            return
        ts = msg.payload.ts_ns
        if ts > self._now:
            self._now = ts
        timeline = self._timeline(call_id, msg.link_call_ids)
        dialog = timeline.dialogs.get(call_id)
        if dialog is None:
            dialog = timeline.dialogs[call_id] = Dialog(call_id)
        dialog.add(msg)
        timeline.messages.append(msg)
        if ts > timeline.last_ns:
            timeline.last_ns = ts

    def _add_log(self, placed: Placed) -> None:
        if placed.ts_ns is not None:
            self._timed += 1
            if placed.ts_ns % 1_000_000_000 == 0:
                self._whole_seconds += 1
        if placed.call_id is None:
            self.unattributed += 1
            (self._ready if self.skew is not None else self._held_loose).append(placed)
            return
        timeline = self._timeline(placed.call_id)
        timeline.logs.append(placed)
        if placed.ts_ns is not None and placed.ts_ns > timeline.last_ns:
            timeline.last_ns = placed.ts_ns

    def _sweep(self, before_ns: int | None) -> Iterator[CallTimeline | Placed]:
        """Finish the calls with nothing since `before_ns` (all of them when None)."""
        done: dict[int, CallTimeline] = {}
        for timeline in self.open.values():
            # A call seen only in lines without time (stderr) waits for the end of the input.
            if before_ns is None or 0 < timeline.last_ns < before_ns:
                done[id(timeline)] = timeline
        for timeline in done.values():
            for call_id in timeline.call_ids:
                if self.open.get(call_id) is timeline:
                    del self.open[call_id]
        finished = sorted(done.values(), key=_start)
        if self.skew is not None:
            for timeline in finished:
                timeline.skew = self.skew
                yield timeline
            return
        for timeline in finished:
            self._bounds.extend(_bounds(timeline, self.resolution_ns))
        self._held.extend(finished)
        if len(self._held) >= self.skew_calls:
            yield from self._release()

    def _release(self) -> Iterator[CallTimeline | Placed]:
        """The calls and unattributed records held while the skew was not yet known."""
        if self.skew is None:
            self.skew = estimate(self._bounds, self.resolution_ns)
        held, self._held = self._held, []
        for timeline in sorted(held, key=_start):
            timeline.skew = self.skew
            yield timeline
        loose, self._held_loose = self._held_loose, []
        yield from loose

    @property
    def resolution_ns(self) -> int:
        """1 s when every timed record so far has whole seconds (traditional syslog), else 1 µs."""
        return 1_000_000_000 if self._timed and self._whole_seconds == self._timed else 1000


def _capture_ns(record: SipMessage | HepLog) -> int:
    return record.ts_ns if type(record) is HepLog else cast(SipMessage, record).payload.ts_ns


def _event_ns(event: LogEvent | None) -> int | None:
    return None if event is None else time_ns(event.timestamp)


def _start(timeline: CallTimeline) -> int:
    if timeline.messages:
        return min(m.payload.ts_ns for m in timeline.messages)
    times = [p.ts_ns for p in timeline.logs if p.ts_ns is not None]
    return min(times) if times else 0


def first_packets(messages: Iterable[SipMessage]) -> dict[tuple[str | None, MessageKey], int]:
    """The earliest packet time of each (Call-ID, message key) among the messages."""
    first: dict[tuple[str | None, MessageKey], int] = {}
    for msg in messages:
        cseq = msg.cseq_num
        if cseq is None:
            continue
        key = (msg.call_id, (1 if msg.method else 2, cseq, msg.cseq_method or ""))
        ts = msg.payload.ts_ns
        if key not in first or ts < first[key]:
            first[key] = ts
    return first


def _bounds(timeline: CallTimeline, resolution_ns: int) -> Iterator[int]:
    """Upper bounds of the skew: the first line about a message minus the earliest packet with
    the same Call-ID, CSeq and kind (see skew.py)."""
    first_packet = first_packets(timeline.messages)
    first_line: dict[tuple[str | None, MessageKey], int] = {}
    for placed in timeline.logs:
        if placed.key is None or placed.ts_ns is None:
            continue
        key = (placed.call_id, placed.key)
        if key not in first_line or placed.ts_ns < first_line[key]:
            first_line[key] = placed.ts_ns
    for key, line_ns in first_line.items():
        packet_ns = first_packet.get(key)
        if packet_ns is not None:
            # A precise line can be no earlier than its packet; a line cut to whole seconds can
            # be up to a second earlier than when it was written.
            yield line_ns - packet_ns + (resolution_ns if resolution_ns >= 1_000_000_000 else 0)
