"""Readable text, one record per line, the level coloured as `kamailio -e` colours it.

    2026-11-28 09:40:01.123456 vm kamailio[3159] ERROR    {1 INVITE 1-3163@127.0.0.1} tm [t_lookup.c:1234]: t_reply(): ...

The Call-ID is shown once, in braces after the level, with the CSeq when known; a log_prefix
that is not Kamailio's default is shown as written instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from ..events import LogEvent
from ..levels import NUMBER_OF_NAME, BY_NUMBER

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"


def format_time(value: datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def call_info(event: LogEvent) -> str:
    call_id = event.call_id
    prefix = (event.log_prefix or "").strip()
    if event.cseq_num is not None and call_id is not None:
        return f"{{{event.cseq_num} {event.cseq_method} {call_id}}} "
    if prefix:
        if call_id is not None and call_id not in prefix:
            return f"{prefix} {{{call_id}}} "
        return f"{prefix} "
    if call_id is not None and call_id not in (event.message or ""):
        return f"{{{call_id}}} "
    return ""


def format_event(event: LogEvent, color: bool = False) -> str:
    if event.error is not None:
        return f"{_DIM}{event.message}{_RESET}" if color else event.message
    parts: list[str] = []
    ts = event.timestamp
    if ts is not None:
        parts.append(format_time(ts))
    if event.host:
        parts.append(event.host)
    if event.program:
        parts.append(f"{event.program}[{event.pid}]" if event.pid is not None else event.program)
    elif event.pid is not None:
        parts.append(f"{event.process_no}({event.pid})" if event.process_no is not None else f"[{event.pid}]")
    level = event.level
    if level is not None:
        shown = level or "CRIT"
        padded = f"{shown:<8}"
        number = event.level_no if event.level_no is not None else NUMBER_OF_NAME.get(level)
        if color and number is not None:
            padded = f"\x1b[{BY_NUMBER[number].ansi}m{shown}{_RESET}{' ' * (8 - len(shown))}"
        parts.append(padded)
    head = " ".join(parts)
    text = call_info(event)
    if event.module:
        text += event.module
        if event.src_file:
            text += f" [{event.src_file}:{event.src_line}]"
        text += ": "
    if event.function:
        text += f"{event.function}(): "
    text += event.message or ""
    return f"{head} {text}" if head else text


class ConsoleSink:
    def __init__(self, stream: TextIO, color: bool = False) -> None:
        self.stream = stream
        self.color = color

    def __call__(self, event: LogEvent) -> None:
        self.stream.write(format_event(event, self.color) + "\n")

    def flush(self) -> None:
        self.stream.flush()
