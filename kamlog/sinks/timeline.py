"""A call timeline as JSON documents: one per event, log records (ECS) and SIP messages
(Packetbeat's names), each saying which call it is on and how it was put there."""

from __future__ import annotations

from typing import IO, Any

from orjson import dumps as _dumps

from ..correlate.attribution import CALL_ID, HEP, Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..sip import SipMessage, rfc3339
from ..sip.document import sip_document
from .ecs import timestamp_text


def log_json(placed: Placed, at_ns: int | None, call: str | None) -> str:
    """A log record as one JSON text: its ECS document (`ecs.log_event`) with `@timestamp` in
    the capture's clock (the skew taken off), the time it was written with as
    `kamlog.original_timestamp`, where and how it was placed, and `kamlog.call`.

    Written without building a dict, which costs twice as much where a log has millions of
    lines; a test holds it byte for byte equal to the dict built from `ecs.log_event`. Every
    string is escaped by one orjson call over the list of them: in orjson's output of a list of
    strings, `","` only ever separates two of them (a quote inside a string is always escaped)."""
    event = placed.event
    (timestamp, host, program, pid, process_no, level, level_no, module, src_file, src_line, function,
     log_prefix, message, call_id, cseq_num, cseq_method, _msg_type, error) = event.values()
    key = placed.key
    extra_cseq = key is not None and placed.how != CALL_ID
    (e_level, e_message, e_host, e_program, e_module, e_src_file, e_function, e_prefix, e_placed, e_method,
     e_error, e_path, e_grammar, e_key_method, e_call) = _dumps([
        level or "", message, host or "", program or "", module or "", src_file or "", function or "",
        log_prefix or "", placed.call_id or "", cseq_method or "", error or "", event.path, event.grammar,
        key[2] if extra_cseq and key is not None else "", call or "",
    ]).decode()[2:-2].split('","')
    original = timestamp_text(timestamp) if timestamp is not None else None
    if at_ns is not None:
        parts = [f'{{"@timestamp":"{rfc3339(at_ns, 6)}"']
    elif original is not None:
        parts = [f'{{"@timestamp":"{original}"']
    else:
        parts = ['{"@timestamp":null']
    add = parts.append
    if level is not None:
        add(f',"log.level":"{e_level}"')
    add(f',"message":"{e_message}"')
    if host:
        add(f',"host.hostname":"{e_host}"')
    if program:
        add(f',"process.name":"{e_program}"')
    if pid is not None:
        add(f',"process.pid":{pid}')
    if process_no is not None:
        add(f',"kamailio.process_no":{process_no}')
    if level_no is not None:
        add(f',"kamailio.level":{level_no}')
    if module:
        add(f',"log.logger":"{e_module}"')
    if src_file:
        add(f',"log.origin.file.name":"{e_src_file}"')
    if src_line is not None:
        add(f',"log.origin.file.line":{src_line}')
    if function:
        add(f',"log.origin.function":"{e_function}"')
    if log_prefix:
        add(f',"kamailio.log_prefix":"{e_prefix}"')
    placed_call = "null" if placed.call_id is None else f'"{e_placed}"'
    if call_id:
        add(f',"sip.call_id":{placed_call}')
    if cseq_num is not None:
        add(f',"sip.cseq.code":{cseq_num}')
    if cseq_method:
        add(f',"sip.cseq.method":"{e_method}"')
    if error:
        add(f',"error.message":"{e_error}"')
    file_id = event.file_id
    ident = f',"log.file.device_id":"{file_id[0]}","log.file.inode":"{file_id[1]}"' if file_id else ""
    add(f',"log.file.path":"{e_path}"{ident},"log.offset":{event.offset},"event.dataset":"kamailio.log",'
        f'"kamailio.grammar":"{e_grammar}"')
    if not call_id:
        add(f',"sip.call_id":{placed_call}')
    add(',"kamlog.original_timestamp":null' if original is None else f',"kamlog.original_timestamp":"{original}"')
    add(f',"kamlog.attribution":"{placed.how}"')
    if extra_cseq and key is not None:
        if cseq_num is None:
            add(f',"sip.cseq.code":{key[1]}')
        if not cseq_method:
            add(f',"sip.cseq.method":"{e_key_method}"')
    add(',"kamlog.call":null}' if call is None else f',"kamlog.call":"{e_call}"}}')
    return "".join(parts)


def hep_log_json(placed: Placed, at_ns: int | None, call: str | None) -> str:
    """A HEP log record (hlog()): what it has, and where in which capture it came."""
    event = placed.event
    original = timestamp_text(event.timestamp) if event.timestamp is not None else None
    doc = {"@timestamp": rfc3339(at_ns, 6) if at_ns is not None else original, "message": event.message,
           "sip.call_id": placed.call_id, "event.dataset": "kamailio.log", "kamlog.capture.file": event.path,
           "kamlog.capture.frame": event.offset, "kamlog.capture.via": "hep",
           "kamlog.original_timestamp": original, "kamlog.attribution": placed.how, "kamlog.call": call}
    return _dumps(doc).decode()


def message_document(msg: SipMessage, timeline: CallTimeline) -> dict[str, Any]:
    """A SIP message: `kamlog messages`' document (with its capture file and frame), on its call."""
    doc = sip_document(msg)
    doc["kamlog.original_timestamp"] = doc["@timestamp"]
    doc["kamlog.attribution"] = CALL_ID
    doc["kamlog.call"] = timeline.call_id
    return doc


class JsonWriter:
    """`kamlog correlate --format json`: one object per event and line."""

    def __init__(self, stream: IO[bytes], min_level: int | None = None) -> None:
        import orjson

        self._dumps = orjson.dumps
        self.stream = stream
        self.min_level = min_level

    def _keep(self, placed: Placed) -> bool:
        if self.min_level is None:
            return True
        number = placed.event.level_no
        return number is not None and number <= self.min_level

    def call(self, timeline: CallTimeline) -> None:
        dumps = self._dumps
        offset = timeline.skew.offset_ns
        call = timeline.call_id
        lines: list[str] = []
        for at, _, event in timeline.events():
            if isinstance(event, SipMessage):
                lines.append(dumps(message_document(event, timeline)).decode())
            elif self._keep(event):
                # A line without its own time gets its message's (its original timestamp is null).
                write = hep_log_json if event.event.grammar == HEP else log_json
                lines.append(write(event, at if event.ts_ns is None else event.ts_ns - offset, call))
        lines.append("")
        self.stream.write("\n".join(lines).encode())

    def unattributed(self, placed: Placed, skew: Skew) -> None:
        if self._keep(placed):
            at = None if placed.ts_ns is None else placed.ts_ns - skew.offset_ns
            write = hep_log_json if placed.event.grammar == HEP else log_json
            self.stream.write(write(placed, at, None).encode() + b"\n")

    def close(self, summary: Summary) -> None:
        self.stream.flush()
