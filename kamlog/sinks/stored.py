"""Stored documents read back as text: one line per event (`kamlog search`), or a call's whole
ladder (`kamlog show`), drawn as `correlate` draws it: the SIP messages are parsed again from
their `event.original`, so the header's dialog state comes from the same code."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from ..capture.packets import Payload
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..dialogs import Dialogs
from ..levels import BY_NUMBER
from ..query.kql import date_ns
from ..sip import SipMessage
from ..sip.document import DATASET as SIP_DATASET
from ..sip.message import parse_sip
from .ladder import TIME_WIDTH, arrow, clock, heading, log_line


def time_ns(text: str | None) -> int | None:
    return date_ns(text) if text else None


def message(doc: dict[str, Any]) -> SipMessage | None:
    """The SIP message a document was made from."""
    raw = doc.get("event.original")
    ts = time_ns(doc.get("@timestamp"))
    if raw is None or ts is None:
        return None
    payload = Payload(raw.encode("utf-8", "surrogateescape"), ts, 6, str(doc.get("source.ip")),
                      int(doc.get("source.port") or 0), str(doc.get("destination.ip")),
                      int(doc.get("destination.port") or 0), str(doc.get("network.transport") or "udp"),
                      str(doc.get("kamlog.capture.file") or ""), int(doc.get("kamlog.capture.frame") or 0),
                      str(doc.get("kamlog.capture.via") or ""))
    return parse_sip(payload)


def _log(doc: dict[str, Any], color: bool) -> str:
    number = doc.get("kamailio.level")
    pid = doc.get("process.pid", doc.get("kamailio.process_no"))
    return log_line(doc.get("log.level"), number if number in BY_NUMBER else None, doc.get("log.logger"),
                    doc.get("log.origin.function"), pid, str(doc.get("message", "")),
                    doc.get("kamlog.attribution") == "process", color)


def event_line(doc: dict[str, Any], color: bool = False) -> str:
    """One event on one line: time, Call-ID, then the message's arrow text or the log record."""
    ts = time_ns(doc.get("@timestamp"))
    when = f"{doc['@timestamp'][:10]} {clock(ts)}" if ts is not None else " " * 26
    call = doc.get("sip.call_id") or doc.get("kamlog.call") or "-"
    if doc.get("event.dataset") == SIP_DATASET:
        what = doc.get("sip.method") or f"{doc.get('sip.code', '')} {doc.get('sip.status', '')}".strip()
        return (f"{when}  {call}  {doc.get('source.ip')}:{doc.get('source.port')} -> "
                f"{doc.get('destination.ip')}:{doc.get('destination.port')}  {what}")
    return f"{when}  {call}  {_log(doc, color)}"


def render_calls(docs: Iterable[dict[str, Any]], color: bool = False) -> Iterator[str]:
    """Each call's ladder, from its documents in timeline order (kamlog.sequence)."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        calls.setdefault(str(doc.get("kamlog.call")), []).append(doc)
    for call, events in calls.items():
        yield from _ladder(call, in_order(events), color)


def in_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One call's documents in the order of its timelines: each timeline (kamlog.timeline: one
    per node that saw the call, and one more for lines that came after it was stored) in its
    own kamlog.sequence order, the timelines merged by time, keeping each one's order."""
    parts: dict[object, list[dict[str, Any]]] = {}
    for doc in docs:
        parts.setdefault(doc.get("kamlog.timeline"), []).append(doc)
    ordered = [sorted(part, key=lambda d: d.get("kamlog.sequence", 0)) for part in parts.values()]
    if len(ordered) == 1:
        return ordered[0]
    return list(heapq.merge(*ordered, key=lambda d: time_ns(d.get("@timestamp")) or 0))


def _ladder(call: str, events: list[dict[str, Any]], color: bool) -> Iterator[str]:
    parsed = [(doc, message(doc)) for doc in events]
    messages = [msg for doc, msg in parsed if msg is not None]
    dialogs = Dialogs().extend(messages).by_call_id
    legs = [call, *sorted(c for c in dialogs if c != call)]
    logs = [doc for doc, msg in parsed if doc.get("event.dataset") != SIP_DATASET]
    timeline = CallTimeline(legs, dialogs=dialogs, messages=messages)
    lines, columns = heading(timeline, color, len(logs), _skew(logs))
    yield from lines
    for doc, msg in parsed:
        ts = time_ns(doc.get("@timestamp"))
        at = clock(ts) if ts is not None else " " * TIME_WIDTH
        if msg is not None:
            yield at + arrow(columns, msg)
        elif doc.get("event.dataset") != SIP_DATASET:
            # A line written without a time is shown without one, as correlate shows it.
            shown = at if doc.get("kamlog.original_timestamp") is not None else " " * TIME_WIDTH
            yield f"{shown}    {_log(doc, color)}"
    yield ""


def _skew(logs: list[dict[str, Any]]) -> str:
    """The clock skew the call's log lines were corrected by (their original minus their time)."""
    for doc in logs:
        original, corrected = time_ns(doc.get("kamlog.original_timestamp")), time_ns(doc.get("@timestamp"))
        if original is not None and corrected is not None:
            shown = Skew(original - corrected, 1, 1000).text().split(" (")[0]
            return f"{shown} (log clock minus capture clock)"
    return "unknown (no log line with its own time)"
