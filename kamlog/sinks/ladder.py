"""A call timeline as text: a header, then the SIP messages as a ladder between the endpoints
(sngrep's flow, in the terminal) with the log records interleaved at their time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import IO

from ..correlate.attribution import PROCESS, Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..levels import BY_NUMBER
from ..sip import SipMessage

COLUMN = 24
TIME_WIDTH = 15
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"


def clock(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1000 / 1e6, timezone.utc).strftime("%H:%M:%S.%f")


def stamp(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1000 / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def label(msg: SipMessage) -> str:
    if msg.method is not None:
        return msg.method
    return f"{msg.status_code} {msg.reason}".strip()


def header(timeline: CallTimeline, logs: int | None = None, skew_text: str | None = None) -> list[str]:
    """The call's title lines; `logs` and `skew_text` stand in for what a call read back from a
    store no longer has (its Placed records, the skew's evidence)."""
    dialog = timeline.dialog
    if logs is None:
        logs = len(timeline.logs)
    lines = [f"Call {timeline.call_id}"]
    if dialog.from_uri or dialog.to_uri:
        lines.append(f"  {dialog.from_uri or '?'} -> {dialog.to_uri or '?'}")
    if timeline.messages:
        begin = min(d.start_ns for d in timeline.dialogs.values())
        end = max(d.end_ns for d in timeline.dialogs.values())
        lines.append(f"  start {stamp(begin)}, {(end - begin) / 1e9:.3f} s, {dialog.state_text}, "
                     f"{len(timeline.messages)} SIP messages, {logs} log lines")
    else:
        lines.append(f"  not in the capture; {logs} log lines")
    lines.append(f"  clock skew {skew_text or timeline.skew.text()}")
    if len(timeline.call_ids) > 1:
        lines.append(f"  linked legs: {', '.join(timeline.call_ids[1:])}")
    return lines


def arrow(columns: list[str], msg: SipMessage) -> str:
    p = msg.payload
    src = columns.index(f"{p.src_ip}:{p.src_port}")
    dst = columns.index(f"{p.dst_ip}:{p.dst_port}")
    width = COLUMN * len(columns)
    row = [" "] * width
    for i in range(len(columns)):
        row[i * COLUMN + COLUMN // 2] = "│"
    text = label(msg)
    a, b = sorted((src, dst))
    left, right = a * COLUMN + COLUMN // 2, b * COLUMN + COLUMN // 2
    if a == b:
        row[left + 1 : left + 3 + len(text)] = list(f"↺ {text}")[: width - left - 1]
        return "".join(row).rstrip()
    for i in range(left + 1, right):
        row[i] = "─"
    if dst > src:
        row[right - 1] = "▶"
    else:
        row[left + 1] = "◀"
    span = right - left - 3
    shown = f" {text} " if len(text) + 2 <= span else f" {text[: max(span - 3, 1)]}… "
    start = left + 2 + (span - len(shown)) // 2
    row[start : start + len(shown)] = list(shown)
    return "".join(row).rstrip()


def log_text(placed: Placed, color: bool) -> str:
    event = placed.event
    pid = event.pid if event.pid is not None else event.process_no
    return log_line(event.level, event.level_no, event.module, event.function, pid, event.message,
                    placed.how == PROCESS, color)


def log_line(level: str | None, number: int | None, module: str | None, function: str | None, pid: int | None,
             message: str, by_process: bool, color: bool) -> str:
    """A log record as the ladder shows it: level, process, module, function, message."""
    shown = f"{(level or 'CRIT') if level is not None else '-':<8}"
    if color and number is not None:
        shown = f"\x1b[{BY_NUMBER[number].ansi}m{shown.rstrip()}{_RESET}{' ' * (8 - len(shown.rstrip()))}"
    where = f"{module}: " if module else ""
    if function:
        where += f"{function}(): "
    mark = "~" if by_process else " "
    text = message.replace("\n", "\n" + " " * (TIME_WIDTH + 17)) if "\n" in message else message
    return f"{mark} {shown} [{pid if pid is not None else '-'}] {where}{text}"


def endpoints(timeline: CallTimeline) -> list[str]:
    """The call's endpoints (`ip:port`), one ladder column each, in the order they appeared."""
    out: list[str] = []
    for dialog in timeline.dialogs.values():
        out.extend(e for e in dialog.endpoints if e not in out)
    return out


def heading(timeline: CallTimeline, color: bool, logs: int | None = None,
            skew_text: str | None = None) -> tuple[list[str], list[str]]:
    """The lines above the ladder (the header, then the endpoints' row) and the endpoints."""
    title = header(timeline, logs, skew_text)
    lines = [f"{_BOLD}{title[0]}{_RESET}" if color else title[0], *title[1:]]
    columns = endpoints(timeline)
    if columns:
        lines += ["", " " * TIME_WIDTH + "".join(f"{e[: COLUMN - 2]:^{COLUMN}}" for e in columns).rstrip()]
    return lines, columns


def render(timeline: CallTimeline, color: bool = False, min_level: int | None = None) -> Iterator[str]:
    """The call's lines of text (no trailing newlines)."""
    lines, columns = heading(timeline, color)
    yield from lines
    for at, _, event in timeline.events():
        if isinstance(event, SipMessage):
            yield f"{clock(at)}{arrow(columns, event)}"
        else:
            number = event.event.level_no
            if min_level is not None and (number is None or number > min_level):
                continue
            # A line written without a time is shown without one, in its place after its message.
            yield f"{clock(at) if event.ts_ns is not None else ' ' * TIME_WIDTH}    {log_text(event, color)}"
    yield ""


def render_unattributed(placed: Placed, offset_ns: int, color: bool) -> str:
    at = None if placed.ts_ns is None else placed.ts_ns - offset_ns
    return f"{clock(at) if at is not None else ' ' * TIME_WIDTH}    {log_text(placed, color)}"


class TextWriter:
    """`kamlog correlate`'s text output: each call as it finishes, then the unattributed
    records (listed with `show_unattributed`, else counted) and a summary line."""

    def __init__(self, stream: IO[bytes], color: bool = False, min_level: int | None = None,
                 show_unattributed: bool = False) -> None:
        self.stream = stream
        self.color = color
        self.min_level = min_level
        self.show_unattributed = show_unattributed
        self.loose: list[str] = []
        self.loose_count = 0

    def _write(self, lines: Iterable[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines).encode("utf-8", "replace"))

    def call(self, timeline: CallTimeline) -> None:
        self._write(render(timeline, self.color, self.min_level))

    def unattributed(self, placed: Placed, skew: Skew) -> None:
        number = placed.event.level_no
        if self.min_level is not None and (number is None or number > self.min_level):
            return
        self.loose_count += 1
        if self.show_unattributed:
            self.loose.append(render_unattributed(placed, skew.offset_ns, self.color))

    def close(self, summary: Summary) -> None:
        lines = []
        if self.loose_count:
            lines.append(f"Not placed on any call: {self.loose_count} log lines"
                         + ("" if self.show_unattributed else " (--unattributed lists them)"))
            lines.extend(self.loose)
            lines.append("")
        a = summary.attribution
        lines.append(f"{summary.shown} of {summary.calls} calls shown; {summary.messages} SIP messages; "
                     f"{summary.log_events} log lines: {a.get('call_id', 0)} by Call-ID, {a.get('process', 0)} "
                     f"by process (marked ~), {a.get('unattributed', 0)} unattributed; "
                     f"clock skew {summary.skew.text()}")
        self._write(lines)
        self.stream.flush()
