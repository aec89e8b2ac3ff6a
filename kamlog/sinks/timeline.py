"""A call timeline as JSON documents: one per event, log records (ECS) and SIP messages
(Packetbeat's names), each saying which call it is on and how it was put there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from ..correlate.attribution import CALL_ID, Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..sip import SipMessage, rfc3339
from ..sip.document import sip_document
from .ecs import log_event


def log_document(placed: Placed, at_ns: int | None) -> dict[str, Any]:
    """A log record: its ECS document with `@timestamp` in the capture's clock (the skew taken
    off), the time it was written with as `kamlog.original_timestamp`."""
    doc = log_event(placed.event)
    original = doc.pop("@timestamp", None)
    doc = {"@timestamp": rfc3339(at_ns, 6) if at_ns is not None else original, **doc}
    doc["sip.call_id"] = placed.call_id
    doc["kamlog.original_timestamp"] = original
    doc["kamlog.attribution"] = placed.how
    if placed.key is not None and placed.how != CALL_ID:
        doc.setdefault("sip.cseq.code", placed.key[1])
        doc.setdefault("sip.cseq.method", placed.key[2])
    return doc


def message_document(msg: SipMessage, timeline: CallTimeline) -> dict[str, Any]:
    doc = sip_document(msg)
    payload = msg.payload
    doc["kamlog.original_timestamp"] = doc["@timestamp"]
    doc["kamlog.attribution"] = CALL_ID
    doc["kamlog.call"] = timeline.call_id
    doc["source.ip"] = payload.src_ip
    doc["source.port"] = payload.src_port
    doc["destination.ip"] = payload.dst_ip
    doc["destination.port"] = payload.dst_port
    doc["network.transport"] = payload.transport
    doc["kamlog.capture.file"] = payload.file
    doc["kamlog.capture.frame"] = payload.frame
    return doc


def timeline_documents(timeline: CallTimeline) -> Iterator[dict[str, Any]]:
    """Every event of the call in time order; `kamlog.call` names the call's leading Call-ID
    (a linked leg keeps its own `sip.call_id`)."""
    offset = timeline.skew.offset_ns
    for at, _, event in timeline.events():
        if isinstance(event, SipMessage):
            yield message_document(event, timeline)
        else:
            # A line without its own time gets its message's (its original timestamp is null).
            doc = log_document(event, at if event.ts_ns is None else event.ts_ns - offset)
            doc["kamlog.call"] = timeline.call_id
            yield doc


def unattributed_document(placed: Placed, offset_ns: int) -> dict[str, Any]:
    at = None if placed.ts_ns is None else placed.ts_ns - offset_ns
    doc = log_document(placed, at)
    doc["kamlog.call"] = None
    return doc


class JsonWriter:
    """`kamlog correlate --format json`: one object per event and line (orjson)."""

    def __init__(self, stream: IO[bytes], min_level: int | None = None) -> None:
        import orjson

        self._dumps = orjson.dumps
        self.stream = stream
        self.min_level = min_level

    def _keep(self, doc: dict[str, Any]) -> bool:
        if self.min_level is None or doc.get("event.dataset") != "kamailio.log":
            return True
        number = doc.get("kamailio.level")
        return number is not None and number <= self.min_level

    def call(self, timeline: CallTimeline) -> None:
        dumps = self._dumps
        self.stream.write(b"".join(dumps(doc) + b"\n" for doc in timeline_documents(timeline) if self._keep(doc)))

    def unattributed(self, placed: Placed, skew: Skew) -> None:
        doc = unattributed_document(placed, skew.offset_ns)
        if self._keep(doc):
            self.stream.write(self._dumps(doc) + b"\n")

    def close(self, summary: Summary) -> None:
        self.stream.flush()
