"""LogEvent -> a flat dict with Elastic Common Schema names (and Packetbeat's `sip.*` names).

The one place that knows ECS: the JSON, SQLite and Elasticsearch sinks all write this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events import LogEvent

DATASET = "kamailio.log"


def timestamp_text(value: datetime) -> str:
    """RFC 3339 with microseconds, in the event's own offset (`Z` for UTC)."""
    text = value.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def log_event(event: LogEvent) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    ts = event.timestamp
    if ts is not None:
        doc["@timestamp"] = timestamp_text(ts)
    doc["message"] = event.message
    pairs = (
        ("log.level", event.level),
        ("log.logger", event.module),
        ("log.origin.file.name", event.src_file),
        ("log.origin.file.line", event.src_line),
        ("log.origin.function", event.function),
        ("process.pid", event.pid),
        ("process.name", event.program),
        ("host.hostname", event.host),
        ("log.file.path", event.path),
        ("log.offset", event.offset),
        ("event.dataset", DATASET),
        ("kamailio.level", event.level_no),
        ("kamailio.process_no", event.process_no),
        ("kamailio.log_prefix", event.log_prefix),
        ("kamailio.grammar", event.grammar),
        ("sip.call_id", event.call_id),
        ("sip.cseq.code", event.cseq_num),
        ("sip.cseq.method", event.cseq_method),
        ("error.message", event.error),
    )
    for key, value in pairs:
        if value is not None and value != "":
            doc[key] = value
    if event.level == "":
        doc["log.level"] = ""  # L_CRIT has an empty name; kamailio.level says -2
    return doc
