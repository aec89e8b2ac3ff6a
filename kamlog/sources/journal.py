"""The systemd journal as a source, read through `journalctl -o json`.

History and live entries are read by two journalctl runs joined at a cursor
(`--after-cursor`), so that `-n N` with filters shows the last N matching entries and
following starts exactly after them. With no entry to take a cursor from (`-n 0`, or none
yet), following starts at the second kamlog started (`--since`), and the entries of that
second logged before the start are left out by their timestamp.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence

import orjson

from ..errors import SourceError
from ..events import LogEvent
from ..filters import EventFilter
from ..parsing.grammar import get_grammar
from ..parsing.logline import LineParser
from ..parsing.options import ParseOptions

GRAMMAR = "journald-json"
DEFAULT_IDENTIFIERS = ("kamailio", "/usr/sbin/kamailio")
HISTORY_LIMIT = 100_000  # entries read back when filters make -n N unknowable to journalctl


def journal_matches(options: ParseOptions, units: Sequence[str] | None = None) -> list[str]:
    """journalctl match arguments: Kamailio's syslog tags, or its units' stderr. `units` None
    (`kamlog tail`): kamailio.service when no tag is given; `kamlog collect` names its own."""
    identifiers = options.programs or DEFAULT_IDENTIFIERS
    if units is None:
        units = () if options.programs else ("kamailio.service",)
    matches: list[str] = []
    for match in [*(f"SYSLOG_IDENTIFIER={name}" for name in identifiers), *(f"_SYSTEMD_UNIT={u}" for u in units)]:
        if matches:
            matches.append("+")
        matches.append(match)
    return matches


class JournalReader:
    """Runs journalctl and parses what it prints; remembers the last cursor seen."""

    def __init__(self, options: ParseOptions, journalctl: str = "journalctl", extra: Sequence[str] = ()) -> None:
        if shutil.which(journalctl) is None:
            raise SourceError(f"{journalctl} is not installed; give the log file's path instead")
        self.options = options
        self.journalctl = journalctl
        self.extra = list(extra)
        self.parser = LineParser(get_grammar(GRAMMAR, options.overrides()), "journal", callids=options.callids(), programs=options.program_filter())
        self.cursor: str | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, follow: bool, lines: int | None, after: str | None, since: int | None = None) -> list[str]:
        cmd = [self.journalctl, "-o", "json", "--no-pager", *self.extra]
        if follow:
            cmd.append("--follow")
        if after is not None:
            cmd.append(f"--after-cursor={after}")
        elif since is not None:
            cmd.append(f"--since=@{since}")
        elif lines is not None:
            cmd.append(f"--lines={lines}")
        return cmd + journal_matches(self.options)

    def read(
        self, follow: bool, lines: int | None, after: str | None = None, since: int | None = None
    ) -> Iterator[LogEvent]:
        cmd = self.command(follow, lines, after, since)
        try:
            self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise SourceError(f"cannot run {cmd[0]}: {exc.strerror}") from None
        assert self.process.stdout is not None
        offset = 0
        try:
            for raw in self.process.stdout:
                self._remember_cursor(raw)
                event = self.parser.parse_line(raw.decode("utf-8", "replace").rstrip("\n"), offset)
                offset += len(raw)
                if event is not None:
                    yield event
        finally:
            self.stop()
        if self.process.returncode not in (0, None, -15):
            assert self.process.stderr is not None
            err = self.process.stderr.read().decode("utf-8", "replace").strip()
            raise SourceError(f"journalctl failed: {err or f'exit code {self.process.returncode}'}")

    def _remember_cursor(self, raw: bytes) -> None:
        start = raw.find(b'"__CURSOR":"')
        if start >= 0:
            end = raw.find(b'"', start + 12)
            if end > 0:
                try:
                    self.cursor = orjson.loads(raw[start + 11 : end + 1])
                except orjson.JSONDecodeError:
                    pass

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process)


def end_process(process: subprocess.Popen[bytes]) -> None:
    """Stop journalctl (ours, by its PID): TERM, then KILL if it has not gone within 5 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def journal_tail(
    options: ParseOptions,
    keep: EventFilter,
    sink: Callable[[LogEvent], None],
    *,
    last: int | None,
    follow: bool,
    on_notice: Callable[[str], None],
    flush: Callable[[], None],
    journalctl: str = "journalctl",
    extra: Sequence[str] = (),
) -> int:
    """`kamlog tail` on the journal; returns how many events were shown."""
    reader = JournalReader(options, journalctl, extra)
    shown = 0
    # Without a cursor, the follow run starts at the second kamlog started; what that second
    # logged before the start is dropped by its microsecond timestamp.
    started = datetime.now(timezone.utc)
    history: collections.deque[LogEvent] | list[LogEvent]
    history = collections.deque(maxlen=last) if last is not None else []
    if last != 0:
        wanted = last if keep.passes_all else (None if last is None else HISTORY_LIMIT)
        for event in reader.read(follow=False, lines=wanted):
            if keep(event):
                history.append(event)
    for event in history:
        sink(event)
        shown += 1
    flush()
    if follow:
        since = int(started.timestamp()) if reader.cursor is None else None
        for event in reader.read(follow=True, lines=0, after=reader.cursor, since=since):
            if since is not None and event.timestamp is not None and event.timestamp < started:
                continue
            if keep(event):
                sink(event)
                shown += 1
                flush()
    return shown
