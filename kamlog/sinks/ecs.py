"""LogEvent -> a flat dict with Elastic Common Schema names (and Packetbeat's `sip.*` names).

The one place that knows ECS: the JSON, SQLite and Elasticsearch sinks all write this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..events import LogEvent

DATASET = "kamailio.log"


def timestamp_text(value: datetime) -> str:
    """RFC 3339 with microseconds, in the event's own offset (`Z` for UTC)."""
    text = value.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def last_value_cache(function: Callable[[datetime], str]) -> Callable[[datetime], str]:
    """Remembers the last result: consecutive records often share their (second) timestamp."""
    last: list[Any] = [None, ""]

    def cached(value: datetime) -> str:
        if value is not last[0]:
            last[0], last[1] = value, function(value)
        return last[1]  # type: ignore[no-any-return]

    return cached


def log_event(event: LogEvent, time_text: Callable[[datetime], str] = timestamp_text) -> dict[str, Any]:
    """The ECS document of a log record; fields it does not have are left out."""
    (timestamp, host, program, pid, process_no, level, level_no, module, src_file, src_line, function,
     log_prefix, message, call_id, cseq_num, cseq_method, _msg_type, error) = event.values()
    doc: dict[str, Any] = {}
    if timestamp is not None:
        doc["@timestamp"] = time_text(timestamp)
    if level is not None:
        doc["log.level"] = level  # "" for L_CRIT, which Kamailio prints without a name
    doc["message"] = message
    if host:
        doc["host.hostname"] = host
    if program:
        doc["process.name"] = program
    if pid is not None:
        doc["process.pid"] = pid
    if process_no is not None:
        doc["kamailio.process_no"] = process_no
    if level_no is not None:
        doc["kamailio.level"] = level_no
    if module:
        doc["log.logger"] = module
    if src_file:
        doc["log.origin.file.name"] = src_file
    if src_line is not None:
        doc["log.origin.file.line"] = src_line
    if function:
        doc["log.origin.function"] = function
    if log_prefix:
        doc["kamailio.log_prefix"] = log_prefix
    if call_id:
        doc["sip.call_id"] = call_id
    if cseq_num is not None:
        doc["sip.cseq.code"] = cseq_num
    if cseq_method:
        doc["sip.cseq.method"] = cseq_method
    if error:
        doc["error.message"] = error
    doc["log.file.path"] = event.path
    file_id = event.file_id
    if file_id is not None:  # Filebeat's names: the file's identity survives its renaming
        doc["log.file.device_id"] = str(file_id[0])
        doc["log.file.inode"] = str(file_id[1])
    doc["log.offset"] = event.offset
    doc["event.dataset"] = DATASET
    doc["kamailio.grammar"] = event.grammar
    return doc
