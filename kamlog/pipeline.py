"""Wiring: builds the source -> filter -> sink chain of a command, in one place.

Components never know their neighbours; the CLI only opens files and calls these.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Iterator, Sequence

from .errors import SourceError
from .events import LogEvent
from .filters import EventFilter
from .parsing.logline import ParseStats
from .parsing.options import ParseOptions
from .sources.file import FileSource, NoticeHandler
from .tail import tail_offset
from .tail.offsets import end_of_last_line

Sink = Callable[[LogEvent], None]



@dataclass
class TailResult:
    stats: dict[str, ParseStats] = field(default_factory=dict)
    shown: int = 0


def expand(paths: Sequence[str]) -> list[str]:
    """Existing files named by paths and globs, in order, without repeats."""
    out: list[str] = []
    for path in paths:
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        for match in matches:
            if os.path.isfile(match) and match not in out:
                out.append(match)
    return out


def read_events(path: str, start: int, options: ParseOptions) -> Iterator[LogEvent]:
    """Events of one file from byte `start` to its current end (no following), read by the
    same tail engine and parser as `kamlog tail`."""
    if not os.path.isfile(path):
        raise SourceError(f"cannot read {path}: it is not a file")
    source = FileSource([path], options, follow=False, start_offsets={path: start})
    # chain.from_iterable walks the blocks' events in C: no Python frame per event.
    return chain.from_iterable(batch for batch in source if batch is not None)


def start_of_last(path: str, count: int, keep: EventFilter, options: ParseOptions) -> int:
    """Byte offset of the count-th last record of `path` that `keep` passes (0 if fewer)."""
    if count <= 0:
        # Not the file size: a line being written would be cut in two.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return end_of_last_line(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    lines = count * 4 + 64
    while True:
        start = tail_offset(path, lines)
        offsets = [e.offset for e in read_events(path, start, options) if keep(e)]
        if len(offsets) >= count:
            return offsets[-count]
        if start == 0:
            return 0
        lines *= 4


def tail(
    paths: Sequence[str],
    options: ParseOptions,
    keep: EventFilter,
    sink: Sink,
    *,
    last: int | None,
    follow: bool,
    on_notice: NoticeHandler,
    flush: Callable[[], None] = lambda: None,
) -> TailResult:
    """`kamlog tail`: the last `last` matching records of each file (all when None), then follow."""
    options.validate()
    offsets: dict[str, int] = {}
    if last is not None:
        for path in expand(paths):
            offsets[path] = start_of_last(path, last, keep, options)
    source = FileSource(paths, options, follow=follow, start_offsets=offsets, on_notice=on_notice)
    result = TailResult(stats=source.stats)
    check = None if keep.passes_all else keep
    for batch in source:
        if batch is None:
            flush()
            continue
        for event in batch:
            if check is None or check(event):
                sink(event)
                result.shown += 1
    flush()
    return result
