"""Log files as a source: wires the tail engine (kamlog.tail) to the parser.

One LineParser per file (device and inode), so a rotated file and its successor each keep their
own pending multi-line record and clock; the grammar is detected from each file's first chunk
unless the user named one. A file truncated in place starts over with a new parser.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Literal, Mapping, Sequence

from ..events import LogEvent
from ..parsing.logline import LineParser, ParseStats
from ..parsing.options import ParseOptions, uses_rfc3164
from ..tail import Chunk, Follower, Idle, Notice

NoticeHandler = Callable[[str], None]


class FileSource:
    """Yields batches of LogEvents, each to be consumed before the next is asked for;
    None means "caught up, nothing new for now"."""

    def __init__(
        self,
        paths: Sequence[str],
        options: ParseOptions,
        *,
        follow: bool,
        start: Literal["beginning", "end"] = "beginning",
        start_offsets: Mapping[str, int] | None = None,
        on_notice: NoticeHandler | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        self.options = options
        self.on_notice = on_notice or (lambda text: None)
        self.follower = Follower(
            list(paths), follow=follow, start=start, start_offsets=start_offsets, poll_interval=poll_interval
        )
        self.parsers: dict[tuple[int, int], LineParser] = {}
        self._key_of_path: dict[str, tuple[int, int]] = {}
        self.stats: dict[str, ParseStats] = {}
        self._told: set[str] = set()

    def stop(self) -> None:
        self.follower.stop()

    def __iter__(self) -> Iterator[Iterable[LogEvent] | None]:
        for item in self.follower:
            if isinstance(item, Chunk):
                yield self._parser(item).feed(item.data, item.offset)
            elif isinstance(item, Idle):
                pending = self.flush()
                if pending:
                    yield pending
                yield None
            elif isinstance(item, Notice):
                self.on_notice(item.message)
                if item.kind == "truncated":
                    pending = self._forget(item.path)
                    if pending:
                        yield pending
        pending = self.flush()
        if pending:
            yield pending

    def flush(self) -> list[LogEvent]:
        out: list[LogEvent] = []
        for parser in self.parsers.values():
            out.extend(parser.flush())
        return out

    def _forget(self, path: str) -> list[LogEvent]:
        key = self._key_of_path.pop(path, None)
        parser = self.parsers.pop(key, None) if key is not None else None
        return parser.flush() if parser is not None else []

    def _parser(self, chunk: Chunk) -> LineParser:
        key = chunk.identity.key
        parser = self.parsers.get(key)
        if parser is None:
            grammar = self.options.grammar_for(chunk.path, chunk.data)
            parser = self.options.parser(grammar, chunk.path, key)
            stats = self.stats.setdefault(chunk.path, ParseStats())
            parser.stats = stats
            self.parsers[key] = parser
            self._key_of_path[chunk.path] = key
            if chunk.path not in self._told:
                self._told.add(chunk.path)
                message = f"{chunk.path}: reading it as {grammar.name}"
                if uses_rfc3164(grammar) and parser.clock.assumption:
                    message += (
                        f"; its timestamps have no year nor zone: assuming {parser.clock.assumption}"
                        " (set --year and --tz to change that)"
                    )
                self.on_notice(message)
        return parser
