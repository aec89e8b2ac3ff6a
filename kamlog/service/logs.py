"""Log files for the service: one thread per [[logs]] table follows its files (kamlog.tail) and
hands parsed batches, each with how far its file is safely read, to the collector's queue."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from queue import Queue
from typing import Any

from ..events import LogEvent
from ..errors import KamlogError
from ..parsing.logline import LineParser, ParseStats
from ..tail import Chunk, Follower, Idle, Notice
from ..tail.identity import FileIdentity
from ..tail.registry import Registry
from .config import LogSource
from .handoff import hand_over

log = logging.getLogger("kamlog.collect")
_FIRST_LINE = 1024


@dataclass(slots=True)
class LogBatch:
    """Records of one file, and `frontier`: every record that starts before it is in this batch
    or an earlier one (a record held for continuation lines is not yet), so once those are
    stored the registry may say the file is done up to there."""

    identity: FileIdentity
    path: str
    events: list[LogEvent]
    frontier: int
    first_line: bytes | None = None  # given once, with the file's first batch


class LogTailer:
    """Follows the files of one [[logs]] table in a thread; `out` is bounded, so a collector
    that stops taking batches (its spool is full) stops the reading too."""

    def __init__(self, source: LogSource, registry: Registry, out: Queue[Any]) -> None:
        self.source = source
        self.out = out
        self.follower = Follower(list(source.paths), follow=True, start=source.start, registry=registry)
        self.parsers: dict[tuple[int, int], LineParser] = {}
        self.last: dict[tuple[int, int], tuple[FileIdentity, str, int]] = {}
        self.stats: dict[str, ParseStats] = {}
        self.error: str | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kamlog-logs-{source.paths[0]}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.follower.stop()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            for item in self.follower:
                if self._stop.is_set():
                    break
                if isinstance(item, Chunk):
                    self._chunk(item)
                elif isinstance(item, Idle):
                    self._flush()
                elif isinstance(item, Notice):
                    log.info("%s", item.message)
                    if item.kind == "truncated":
                        self._flush()
            self._flush()
        except KamlogError as exc:
            self.error = str(exc)
            log.error("%s; this [[logs]] source stopped", exc)
        finally:
            self._put(None)  # tells the collector this tailer is done

    def _chunk(self, chunk: Chunk) -> None:
        key = chunk.identity.key
        parser = self.parsers.get(key)
        first = None
        if parser is None:
            grammar = self.source.options.grammar_for(chunk.path, chunk.data)
            parser = self.parsers[key] = self.source.options.parser(grammar, chunk.path, key)
            parser.stats = self.stats.setdefault(chunk.path, ParseStats())
            first = _first_line(chunk)
            log.info("%s: reading it as %s from byte %d", chunk.path, grammar.name, chunk.offset)
        events = list(parser.feed(chunk.data, chunk.offset))
        held = parser.held_from
        frontier = chunk.end if held is None else held
        self.last[key] = (chunk.identity, chunk.path, chunk.end)
        self._put(LogBatch(chunk.identity, chunk.path, events, frontier, first))

    def _flush(self) -> None:
        """The follower is idle: no continuation line is coming, the held records are whole."""
        for key, parser in self.parsers.items():
            events = parser.flush()
            identity, path, end = self.last[key]
            if events:
                self._put(LogBatch(identity, path, events, end))

    def _put(self, batch: LogBatch | None) -> None:
        hand_over(self.out, batch, self._stop)


def _first_line(chunk: Chunk) -> bytes | None:
    """The file's first line, which names it in document ids (see store.documents): from the
    chunk when it starts the file, else read again from the file, if it is still the same."""
    if chunk.offset == 0:
        end = chunk.data.find(b"\n", 0, _FIRST_LINE)
        return chunk.data[: end + 1] if end >= 0 else chunk.data[:_FIRST_LINE]
    try:
        with open(chunk.path, "rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != chunk.identity.key:
                return None
            return f.readline(_FIRST_LINE)
    except OSError:
        return None
