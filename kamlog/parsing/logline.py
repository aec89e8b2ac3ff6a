"""The parsing stage: bytes of a log file -> LogEvents, one compiled `re` match per line.

`LineParser` is built once per source (compiles nothing itself: grammars are compiled and
cached by grammar.py) and fed blocks of complete lines with their byte offsets. It joins
continuation lines (stderr's multi-line messages), skips other programs' lines in shared syslog
files, and keeps every line it cannot parse as an event with `error` set: nothing is dropped
without being counted in `stats`.
"""

from __future__ import annotations

import gc
import re
from functools import partial
from itertools import repeat
from dataclasses import dataclass
from typing import Any, Callable, Final, Iterator

from ..correlate.clock import Clock
from ..events import LogEvent
from .callid import CallIdFinder
from .decode import RegexDecoder, converter
from .grammar import CompiledPattern, Grammar
from .programs import ProgramFilter
from .structured import StructuredRecords

_new = tuple.__new__
_event: Final = partial(tuple.__new__, LogEvent)
_SKIP_AFTER_MISS: Final = 16  # blocks read line by line after one that was not all records
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
_CONTINUATION: Final = object()
_SKIPPED: Final = object()


@dataclass(slots=True)
class ParseStats:
    """What happened to every line read: the counts always add up to `lines`."""

    lines: int = 0
    records: int = 0  # events with all fields parsed
    unparsed: int = 0  # events kept raw, with `error` set
    continuation_lines: int = 0  # joined to the record before them
    other_program: int = 0  # lines of other programs in a shared syslog file
    blank: int = 0


class LineParser:
    """Feed it complete lines (`feed`), then `flush()` at the end or when the source is idle."""

    def __init__(
        self,
        grammar: Grammar,
        path: str,
        clock: Clock | None = None,
        callids: CallIdFinder | None = None,
        programs: ProgramFilter | None = None,
        file_id: tuple[int, int] | None = None,
    ) -> None:
        self.grammar = grammar
        self.path = path
        self.file_id = file_id
        self.clock = clock or Clock.for_file(None, None, None)
        self.callids = callids or CallIdFinder()
        self.stats = ParseStats()
        self._continuation = grammar.multiline == "continuation"
        self._pending: LogEvent | None = None
        self._pending_extra: list[str] = []
        self._structured = StructuredRecords(grammar, path, file_id, self.clock, self.callids)
        self._structured.body_attempts = [self._attempt(p) for p in grammar.body_patterns]
        first = grammar.patterns[0]
        self._fast: tuple[Callable[[str], Any], RegexDecoder] | None = None
        self._block_finditer: Callable[[str], Iterator[re.Match[str]]] | None = None
        self._skip_blocks = 0
        if "json" not in first.fields and "body" not in first.fields:
            self._fast = (first.regex.match, RegexDecoder(path, grammar.name, first, self.clock, self.callids, file_id))
            # The same pattern over a whole block, one match per line: see _parse_block.
            block = re.compile(f"(?m)^(?:{first.regex.pattern})", first.regex.flags)
            self._block_finditer = block.finditer
        # The patterns _slow tries: after the first when the fast path already tried it.
        self._attempts = [self._attempt(p) for p in grammar.patterns[1 if self._fast else 0 :]]
        self._other = grammar.other.match if grammar.other is not None else None
        # Text patterns select Kamailio's syslog tags themselves (the PROGRAM definition);
        # tags that come from JSON (journald) are checked here.
        self._programs = programs or ProgramFilter()
        self._filter_programs = bool(grammar.options.get("program_filter"))
        self._unparsed_error = f"the line matches no pattern of grammar {grammar.name}"

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, data: bytes, offset: int) -> Iterator[LogEvent]:
        """The events of a block of lines starting at byte `offset` (a missing final newline is
        fine), as they are parsed: consume them before feeding the next block.

        An iterator, not a list: an event the consumer drops before the next is parsed leaves
        its memory to the next one, still in the CPU's cache (measured: 20% faster)."""
        if data.isascii():
            text = data.decode("ascii")
            if self._block_finditer is not None:
                if self._skip_blocks:
                    self._skip_blocks -= 1
                else:
                    events = self._parse_block(text, offset)
                    if events is not None:
                        return iter(events)
                    self._skip_blocks = _SKIP_AFTER_MISS
            lines = text.split("\n")
            if data.endswith(b"\n"):
                lines.pop()
            return self._parse(lines, offset)
        return self._parse_bytes(data, offset)

    def _parse_block(self, text: str, base: int) -> list[LogEvent] | None:
        """Every line of the block matched by the first pattern, or None (then line by line).

        One `finditer` over the block, the events built by map and zip: no Python code runs
        per line, which makes this as fast as the bare regex loop. The events share the block's
        text and `base`, each finding its offset from where its match starts. It holds only
        when there are as many matches as lines: a line that matches no pattern, or a
        continuation line, makes the counts differ, and the block is parsed line by line.
        """
        lines = text.count("\n") + (not text.endswith("\n"))
        assert self._block_finditer is not None and self._fast is not None
        collecting = gc.isenabled()
        gc.disable()  # no cycles are made: the collector would only rescan the new events
        try:
            events = list(map(_event, zip(self._block_finditer(text), repeat(self._fast[1]), repeat(base))))
        finally:
            if collecting:
                gc.enable()
        if len(events) != lines:
            return None
        self.stats.lines += lines
        self.stats.records += lines
        if not self._continuation or not events:
            return events
        # The block's last record may go on in the next block: hold it back.
        pending, self._pending = self._pending, events.pop()
        if pending is not None:
            events.insert(0, self._finish(pending))
        return events

    def _parse_bytes(self, data: bytes, offset: int) -> Iterator[LogEvent]:
        """Rare: characters are not bytes here, so each line's offset comes from its bytes."""
        raw = data.split(b"\n")
        if data.endswith(b"\n"):
            raw.pop()
        for line in raw:
            yield from self._parse([line.decode("utf-8", "replace")], offset)
            offset += len(line) + 1

    def parse_line(self, line: str, offset: int = 0) -> LogEvent | None:
        """One line as a whole record (no continuation): the event, or None for a skipped line."""
        events = [*self._parse([line], offset), *self.flush()]
        return events[-1] if events else None

    @property
    def held_from(self) -> int | None:
        """Where the record held back for continuation lines starts (None: none is held)."""
        return None if self._pending is None else self._pending.offset

    def flush(self) -> list[LogEvent]:
        """The record held back for continuation lines, if any."""
        event = self._pending
        if event is None:
            return []
        self._pending = None
        return [self._finish(event)]

    # -- the loop --------------------------------------------------------------------------

    def _parse(self, lines: list[str], offset: int) -> Iterator[LogEvent]:
        """The hot loop: one regex match and one small tuple per line that the first pattern
        matches; `offset` advances by the line's length (ASCII: characters are bytes)."""
        if self._continuation:
            yield from self._parse_continued(lines, offset)
            return
        self.stats.lines += len(lines)
        fast_match, decoder = self._fast if self._fast else (_never, None)
        slow = self._slow
        records = 0
        for line in lines:
            m = fast_match(line)
            if m is not None:
                records += 1
                yield _new(LogEvent, (m, decoder, offset))
            else:
                event = slow(line, offset, False)
                if event is not _SKIPPED:
                    yield event
            offset += len(line) + 1
        self.stats.records += records

    def _parse_continued(self, lines: list[str], offset: int) -> Iterator[LogEvent]:
        """Grammars whose messages go on over bare lines (stderr): records are held back by one."""
        self.stats.lines += len(lines)
        fast_match, decoder = self._fast if self._fast else (_never, None)
        for line in lines:
            m = fast_match(line)
            if m is not None:
                event: Any = _new(LogEvent, (m, decoder, offset))
                self.stats.records += 1
            else:
                event = self._slow(line, offset, True)
                if event is _CONTINUATION:
                    self._pending_extra.append(line)
                    offset += len(line) + 1
                    continue
                if event is _SKIPPED:
                    offset += len(line) + 1
                    continue
            pending = self._pending
            self._pending = event
            offset += len(line) + 1
            if pending is not None:
                yield self._finish(pending)

    def _finish(self, event: LogEvent) -> LogEvent:
        if self._pending_extra:
            extra = self._pending_extra
            self._pending_extra = []
            message = "\n".join([event.message or "", *extra])
            # The Call-ID may only be in the later lines of the message (a $mb dump).
            event = event.replace(message=message, call_id=event.call_id or self.callids.in_text(message))
        return event

    def _slow(self, line: str, offset: int, allow_continuation: bool) -> Any:
        """Every pattern after the first, then other programs, blank lines, continuations."""
        stats = self.stats
        for attempt in self._attempts:
            event = attempt(line, offset)
            if event is not None:
                if self._filter_programs and not self._programs.allows(event.program):
                    stats.other_program += 1
                    return _SKIPPED
                stats.records += 1
                return event
        if "\x1b" in line and not _ANSI.sub("", line).strip():
            stats.blank += 1  # `kamailio -e` ends its output with a colour reset and no newline
            return _SKIPPED
        if allow_continuation and self._pending is not None:
            stats.continuation_lines += 1
            return _CONTINUATION
        if not line.strip():
            stats.blank += 1
            return _SKIPPED
        if self._other is not None and self._other(line) is not None:
            stats.other_program += 1
            return _SKIPPED
        stats.unparsed += 1
        return LogEvent.create(
            path=self.path,
            offset=offset,
            grammar=self.grammar.name,
            file_id=self.file_id,
            message=line,
            error=self._unparsed_error,
        )

    # -- one pattern -----------------------------------------------------------------------

    def _attempt(self, pattern: CompiledPattern) -> Callable[[str, int], LogEvent | None]:
        match = pattern.regex.match
        if "json" not in pattern.fields and "body" not in pattern.fields:
            decoder = RegexDecoder(self.path, self.grammar.name, pattern, self.clock, self.callids, self.file_id)

            def lazy(line: str, offset: int) -> LogEvent | None:
                m = match(line)
                return None if m is None else _new(LogEvent, (m, decoder, offset))

            return lazy

        convert = {name: converter(kind, self.clock) for name, (_, kind) in pattern.fields.items()}
        build = self._structured.build

        def eager(line: str, offset: int) -> LogEvent | None:
            m = match(line)
            if m is None:
                return None
            values = {name: convert[name](raw) for name, raw in m.groupdict().items() if raw is not None}
            return build(values, offset)

        return eager


def _never(line: str) -> None:
    return None
