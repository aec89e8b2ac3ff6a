"""Readable text, one record per line, the level coloured as `kamailio -e` colours it.

    2026-11-28 09:40:01.123456 vm kamailio[3159] ERROR    {1 INVITE 1-3163@127.0.0.1} tm [t_lookup.c:1234]: t_reply(): ...

The Call-ID is shown once, in braces after the level, with the CSeq when known; a log_prefix
that is not Kamailio's default is shown as written instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TextIO

from ..events import FIELDS, LogEvent
from ..levels import BY_NUMBER
from .ecs import last_value_cache

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"


def format_time(value: datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def call_info(fields: dict[str, Any]) -> str:
    """`{CSeq-number CSeq-method Call-ID} `, or the user's own prefix; the Call-ID shown once."""
    call_id = fields["call_id"]
    prefix = (fields["log_prefix"] or "").strip()
    if fields["cseq_num"] is not None and call_id is not None:
        return f"{{{fields['cseq_num']} {fields['cseq_method']} {call_id}}} "
    if prefix:
        if call_id is not None and call_id not in prefix:
            return f"{prefix} {{{call_id}}} "
        return f"{prefix} "
    if call_id is not None and call_id not in (fields["message"] or ""):
        return f"{{{call_id}}} "
    return ""


def format_event(event: LogEvent, color: bool = False, time_text: Callable[[datetime], str] = format_time) -> str:
    f = dict(zip(FIELDS, event.values()))
    if f["error"] is not None:
        return f"{_DIM}{f['message']}{_RESET}" if color else str(f["message"])
    parts: list[str] = []
    ts = f["timestamp"]
    if ts is not None:
        parts.append(time_text(ts))
    if f["host"]:
        parts.append(f["host"])
    pid = f["pid"]
    if f["program"]:
        parts.append(f"{f['program']}[{pid}]" if pid is not None else f["program"])
    elif pid is not None:
        parts.append(f"{f['process_no']}({pid})" if f["process_no"] is not None else f"[{pid}]")
    level = f["level"]
    if level is not None:
        shown = level or "CRIT"
        padded = f"{shown:<8}"
        number = f["level_no"]
        if color and number is not None:
            padded = f"\x1b[{BY_NUMBER[number].ansi}m{shown}{_RESET}{' ' * (8 - len(shown))}"
        parts.append(padded)
    text = call_info(f)
    if f["module"]:
        text += f["module"]
        if f["src_file"]:
            text += f" [{f['src_file']}:{f['src_line']}]"
        text += ": "
    if f["function"]:
        text += f"{f['function']}(): "
    text += f["message"] or ""
    return f"{' '.join(parts)} {text}" if parts else text


class ConsoleSink:
    def __init__(self, stream: TextIO, color: bool = False) -> None:
        self.stream = stream
        self.color = color
        self._time_text = last_value_cache(format_time)

    def __call__(self, event: LogEvent) -> None:
        self.stream.write(format_event(event, self.color, self._time_text) + "\n")

    def flush(self) -> None:
        self.stream.flush()
