"""LogEvent -> a flat dict with Elastic Common Schema names (and Packetbeat's `sip.*` names).

The one place that knows ECS: the JSON, SQLite and Elasticsearch sinks all write this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from ..events import FIELDS, LogEvent

DATASET = "kamailio.log"


def timestamp_text(value: datetime) -> str:
    """RFC 3339 with microseconds, in the event's own offset (`Z` for UTC)."""
    text = value.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# ECS name of each LogEvent field, in FIELDS order; None: not written.
_NAMES: Final[dict[str, str | None]] = {
    "timestamp": None,
    "host": "host.hostname",
    "program": "process.name",
    "pid": "process.pid",
    "process_no": "kamailio.process_no",
    "level": None,
    "level_no": "kamailio.level",
    "module": "log.logger",
    "src_file": "log.origin.file.name",
    "src_line": "log.origin.file.line",
    "function": "log.origin.function",
    "log_prefix": "kamailio.log_prefix",
    "message": None,
    "call_id": "sip.call_id",
    "cseq_num": "sip.cseq.code",
    "cseq_method": "sip.cseq.method",
    "msg_type": None,
    "error": "error.message",
}
_PAIRS: Final[tuple[tuple[int, str], ...]] = tuple(
    (i, ecs) for i, name in enumerate(FIELDS) if (ecs := _NAMES[name]) is not None
)
_TIMESTAMP: Final = FIELDS.index("timestamp")
_MESSAGE: Final = FIELDS.index("message")
_LEVEL: Final = FIELDS.index("level")


def log_event(event: LogEvent) -> dict[str, Any]:
    values = event.values()
    doc: dict[str, Any] = {}
    ts = values[_TIMESTAMP]
    if ts is not None:
        doc["@timestamp"] = timestamp_text(ts)
    level = values[_LEVEL]
    if level is not None:
        doc["log.level"] = level  # "" for L_CRIT, which Kamailio prints without a name
    doc["message"] = values[_MESSAGE]
    for index, name in _PAIRS:
        value = values[index]
        if value is not None and value != "":
            doc[name] = value
    doc["log.file.path"] = event.path
    file_id = event.file_id
    if file_id is not None:  # Filebeat's names: the file's identity survives its renaming
        doc["log.file.device_id"] = str(file_id[0])
        doc["log.file.inode"] = str(file_id[1])
    doc["log.offset"] = event.offset
    doc["event.dataset"] = DATASET
    doc["kamailio.grammar"] = event.grammar
    return doc
