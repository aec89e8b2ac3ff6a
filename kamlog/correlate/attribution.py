"""Puts each log record on its call: by the Call-ID it carries, or else by the Kamailio process
that wrote it, or not at all.

A Kamailio worker handles one SIP message at a time, so what a process writes while it handles
a message is about that message's call. The core says when that starts and ends at debug level
3 (`receive_msg(): --- received sip message ... call-id: [X]` and `receive_msg(): cleaning up`):
between the two, every line of that process is placed on X with confidence, and so are the
lines the process wrote while it read and parsed the message just before the first marker. Without those
markers (lower debug levels), a line with no Call-ID is placed only when the lines of its process
just before and just after it name the same call within `sandwich_ns`; any other line stays
unattributed, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Final, NamedTuple

from ..capture.hep import HepLog
from ..events import LogEvent

CALL_ID: Final = "call_id"
PROCESS: Final = "process"
UNATTRIBUTED: Final = "unattributed"
HEP: Final = "hep"  # the grammar name of log records that came in a capture as HEP

_RECEIVED: Final = re.compile(r"--- received sip message - (request|reply) - call-id: \[(.*?)\] - cseq: \[(\d+) (\S+?)\]")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The core functions that log while a worker reads and parses a message, before receive_msg
#: names it (Kamailio 5.6, debug 3): `udp_rcv_loop(): received on udp socket`, the first line
#: and header parsers.
PRELUDE: Final = frozenset({"udp_rcv_loop", "parse_first_line", "parse_msg", "parse_headers",
                            "parse_sip_header_name", "get_hdr_field"})

MessageKey = tuple[int, int, str]  # (msg_type: 1 request, 2 reply; CSeq number; CSeq method)


class Placed(NamedTuple):
    """A log record and where it was put: its call (None when unattributed) and how."""

    event: LogEvent
    call_id: str | None
    how: str  # CALL_ID, PROCESS or UNATTRIBUTED
    ts_ns: int | None  # the record's own time, in ns since the epoch (None: it has none)
    seq: int  # its place in the order the logs were read
    key: MessageKey | None  # the SIP message it was written about, when known


def time_ns(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class _Window:
    """What one process is handling: a call (and message), and whether the core's markers
    bound it (then every line until `cleaning up` is the call's). A window without a call is
    a prelude: a message being read, whose Call-ID the core's next marker will give."""

    __slots__ = ("call_id", "key", "marked", "last_ns", "pending")

    def __init__(self, call_id: str | None, key: MessageKey | None, marked: bool, last_ns: int | None) -> None:
        self.call_id = call_id
        self.key = key
        self.marked = marked
        self.last_ns = last_ns
        self.pending: list[Placed] = []  # unmarked: lines after the call's last line, undecided


class Attributor:
    """Feed log events in the order each file has them (`feed`), then `finish()`; both return
    the events placed so far. Memory: one window per process, plus the undecided lines of
    unmarked windows (at most `max_pending` per process)."""

    def __init__(self, sandwich_ns: int = 1_000_000_000, max_pending: int = 10_000) -> None:
        self.sandwich_ns = sandwich_ns
        self.max_pending = max_pending
        self.windows: dict[tuple[str | None, int], _Window] = {}
        self.seq = 0
        self.counts = {CALL_ID: 0, PROCESS: 0, UNATTRIBUTED: 0}

    def feed(self, event: LogEvent) -> list[Placed]:
        """The events this one decides (itself, and any held before it): each event placed
        holds its own decoded values only (see LogEvent.detached), decoded here once."""
        self.seq += 1
        values = event.values()
        (timestamp, host, _, pid, process_no, _, _, _, _, _, function, _, message, call_id, cseq_num,
         cseq_method, msg_type, _) = values
        event = LogEvent.from_values(values, event.path, event.grammar, event.file_id, event.offset)
        ts = time_ns(timestamp)
        if pid is None:
            pid = process_no
        process = None if pid is None else (host, pid)
        received = _RECEIVED.search(message) if message.startswith("--- received sip") else None
        if received is not None:
            kind, call_id, cseq, method = received.groups()
            key: MessageKey | None = (1 if kind == "request" else 2, int(cseq), method)
        elif call_id is not None and cseq_num is not None and msg_type is not None:
            key = (msg_type, cseq_num, cseq_method or "")
        else:
            key = None
        out: list[Placed] = []
        ends = message == "cleaning up" and function == "receive_msg"
        if call_id is not None:
            placed = Placed(event, call_id, CALL_ID, ts, self.seq, key)
            if process is None:
                out.append(placed)
            else:
                self._named(process, placed, received is not None, out)
                if ends:
                    self.windows.pop(process, None)
            return self._count(out)
        window = self.windows.get(process) if process is not None else None
        if window is not None and function == "udp_rcv_loop":
            # A UDP worker reads the next datagram only once it is done with the last one,
            # whether or not the core said so: what it held stays unattributed.
            assert process is not None
            out.extend(window.pending)
            del self.windows[process]
            window = None
        if window is None:
            pending = Placed(event, None, UNATTRIBUTED, ts, self.seq, None)
            if process is not None and function in PRELUDE:
                # The core reads and parses a message before it names it: hold those lines.
                self.windows[process] = prelude = _Window(None, None, True, ts)
                prelude.pending.append(pending)
            else:
                out.append(pending)
        elif window.marked and window.call_id is not None:
            out.append(Placed(event, window.call_id, PROCESS, ts, self.seq, window.key))
            if ends:
                assert process is not None
                del self.windows[process]
        else:  # a prelude, or after an unmarked window's last line: held until a line names a call
            window.pending.append(Placed(event, None, UNATTRIBUTED, ts, self.seq, None))
            if len(window.pending) > self.max_pending:
                out.extend(window.pending)
                window.pending = []
        return self._count(out)

    def _named(self, process: tuple[str | None, int], placed: Placed, opens: bool, out: list[Placed]) -> None:
        """A line that names its call, written by `process`: it decides the lines held before it."""
        window = self.windows.get(process)
        if window is not None and window.call_id is None:
            # A prelude: the message it read is the one the core now names, if it names one.
            if opens:
                out.extend(p._replace(call_id=placed.call_id, how=PROCESS, key=placed.key) for p in window.pending)
            else:
                out.extend(window.pending)
            window = None
            del self.windows[process]
        if window is not None and window.pending:
            same = window.call_id == placed.call_id and (
                placed.ts_ns is None or window.last_ns is None or placed.ts_ns - window.last_ns <= self.sandwich_ns
            )
            if same and not opens:
                out.extend(p._replace(call_id=window.call_id, how=PROCESS, key=window.key) for p in window.pending)
            else:
                out.extend(window.pending)
            window.pending = []
        out.append(placed)
        if opens:
            self.windows[process] = _Window(placed.call_id, placed.key, True, placed.ts_ns)
        elif window is not None and window.marked:
            pass  # a line inside a marked window that names another call does not end the window
        elif window is not None and window.call_id == placed.call_id:
            window.last_ns = placed.ts_ns
            window.key = placed.key or window.key
        else:
            self.windows[process] = _Window(placed.call_id, placed.key, False, placed.ts_ns)

    def hep(self, record: HepLog) -> Placed:
        """A HEP log record (Kamailio's hlog()): on the call its correlation id names, or none.
        Its event's path and offset are the capture file and frame number (grammar `hep`)."""
        self.seq += 1
        call_id = record.correlation_id or None
        when = _EPOCH + timedelta(microseconds=record.ts_ns // 1000)
        event = LogEvent.create(timestamp=when, message=record.message, call_id=call_id, path=record.file,
                                offset=record.frame, grammar=HEP)
        return self._count([Placed(event, call_id, CALL_ID if call_id else UNATTRIBUTED, record.ts_ns, self.seq, None)])[0]

    def expire(self, before_ns: int) -> list[Placed]:
        """Live use: the processes whose last line is older than `before_ns` are done with
        what they held; their undecided lines stay unattributed, as `finish` would leave them.
        Lines without a time wait for `finish`."""
        out: list[Placed] = []
        for process, window in list(self.windows.items()):
            times = [p.ts_ns for p in window.pending if p.ts_ns is not None]
            if window.last_ns is not None:
                times.append(window.last_ns)
            if times and max(times) < before_ns:
                out.extend(window.pending)
                del self.windows[process]
        return self._count(out)

    def finish(self) -> list[Placed]:
        """Every line still undecided, unattributed: nothing after it says whose it is."""
        out: list[Placed] = []
        for window in self.windows.values():
            out.extend(window.pending)
            window.pending = []
        return self._count(out)

    def _count(self, placed: list[Placed]) -> list[Placed]:
        counts = self.counts
        for p in placed:
            counts[p.how] += 1
        return placed


def place_all(events: Iterable[LogEvent]) -> Iterator[Placed]:
    """Every event placed, in the order decisions are made (tests, small inputs)."""
    attributor = Attributor()
    for event in events:
        yield from attributor.feed(event)
    yield from attributor.finish()
