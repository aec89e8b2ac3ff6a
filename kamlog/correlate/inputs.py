"""The inputs of `kamlog correlate`: which files are captures and which are logs (by content),
rotated log sets in the order they were written, and logs read whole (compressed ones too)."""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Callable, cast

from ..capture.files import COMPRESSED, PCAPNG_MAGIC
from ..capture.pcap import PCAP_MAGICS
from ..errors import SourceError
from ..events import LogEvent
from ..parsing.logline import ParseStats
from ..parsing.options import ParseOptions, uses_rfc3164

CAPTURE_MAGICS = frozenset({*PCAP_MAGICS, PCAPNG_MAGIC})
_OPENERS: dict[str, Callable[[str], IO[bytes]]] = {
    "gzip": lambda p: cast(IO[bytes], gzip.open(p, "rb")),
    "bzip2": lambda p: cast(IO[bytes], bz2.open(p, "rb")),
    "xz": lambda p: cast(IO[bytes], lzma.open(p, "rb")),
}
BLOCK = 1 << 20
MAX_LINE = 16 * BLOCK
_ROTATION = re.compile(r"^(?P<base>.*?)(?:[.-](?P<n>\d{1,4}|\d{8}(?:-\d+)?))?(?P<z>\.(?:gz|bz2|xz))?$")


@dataclass
class Inputs:
    captures: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


def open_decompressed(path: str) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip, bzip2 or xz (told by content)."""
    try:
        with open(path, "rb") as probe:
            head = probe.read(6)
        kind = next((k for magic, k in COMPRESSED.items() if head.startswith(magic)), None)
        return _OPENERS[kind](path) if kind is not None else open(path, "rb")
    except IsADirectoryError:
        raise SourceError(f"{path} is a directory; name the files in it or a glob") from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def is_capture(path: str) -> bool:
    """Whether the file (decompressed) starts as a pcap or pcapng."""
    try:
        with open_decompressed(path) as f:
            head = f.read(4)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return head in CAPTURE_MAGICS


def looks_binary(path: str) -> bool:
    """Whether the file's first 4 KiB (decompressed) hold NUL bytes or are mostly not text:
    such a file given without --log is not a log, and saying so beats a parse error."""
    try:
        with open_decompressed(path) as f:
            head = f.read(4096)
    except (OSError, EOFError, lzma.LZMAError, SourceError):
        return True
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", "replace")
    return text.count("\ufffd") > len(text) // 10


def _expand(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    for arg in args:
        if glob.has_magic(arg):
            found = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not found:
                raise SourceError(f"no file matches {arg}")
            out.extend(found)
        elif os.path.isdir(arg):
            out.extend(sorted(os.path.join(arg, n) for n in os.listdir(arg)
                              if not n.startswith(".") and os.path.isfile(os.path.join(arg, n))))
        elif not os.path.exists(arg):
            raise SourceError(f"{arg} does not exist")
        else:
            out.append(arg)
    return list(dict.fromkeys(out))


def classify(pcaps: Sequence[str], logs: Sequence[str], others: Sequence[str]) -> Inputs:
    """Captures and logs: the flagged ones as given, the others told apart by their content."""
    inputs = Inputs(captures=list(pcaps), logs=_expand(logs))
    for path in _expand(others):
        if is_capture(path):
            inputs.captures.append(path)
        elif looks_binary(path):
            raise SourceError(f"{path} is neither a capture (pcap, pcapng) nor a text log")
        else:
            inputs.logs.append(path)
    inputs.logs = rotation_order(inputs.logs)
    return inputs


def rotation_order(paths: Sequence[str]) -> list[str]:
    """Logs of one rotated set oldest first (`x.log.3.gz`, `x.log.2.gz`, `x.log.1`, `x.log`;
    dateext names by date); sets and lone files keep the order they were given in."""
    groups: dict[str, list[tuple[tuple[int, int | str], str]]] = {}
    for path in paths:
        m = _ROTATION.match(path)
        assert m is not None
        n = m.group("n")
        if n is None:
            key: tuple[int, int | str] = (2, 0)  # the live file: newest
        elif len(n) >= 8:
            key = (1, n)  # dateext: later dates are newer
        else:
            key = (0, -int(n))  # .1 is newer than .2
        groups.setdefault(m.group("base"), []).append((key, path))
    out: list[str] = []
    for members in groups.values():
        out.extend(path for _, path in sorted(members, key=lambda item: item[0]))
    return out


class LogReader:
    """Log events of several files, each parsed by the grammar its first lines show, with byte
    offsets in the decompressed text; records the parse counts per file."""

    def __init__(self, paths: Sequence[str], options: ParseOptions,
                 on_notice: Callable[[str], None] = lambda text: None) -> None:
        self.paths = list(paths)
        self.options = options
        self.on_notice = on_notice
        self.stats: dict[str, ParseStats] = {}
        self.read_bytes = 0

    def __iter__(self) -> Iterator[LogEvent]:
        for path in self.paths:
            yield from self._read(path)

    def _read(self, path: str) -> Iterator[LogEvent]:
        with open_decompressed(path) as f:
            try:
                first = f.read(BLOCK)
            except (OSError, EOFError, lzma.LZMAError) as exc:
                raise SourceError(f"cannot read {path}: {exc}") from None
            if not first:
                return
            grammar = self.options.grammar_for(path, first)
            try:
                st = os.stat(path)
                file_id: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                file_id = None
            parser = self.options.parser(grammar, path, file_id)
            parser.stats = self.stats.setdefault(path, ParseStats())
            note = f"{path}: reading it as {grammar.name}"
            if uses_rfc3164(grammar) and parser.clock.assumption:
                note += f"; its timestamps have no year nor zone: assuming {parser.clock.assumption}"
            self.on_notice(note)
            offset, rest = 0, first
            while True:
                try:
                    more = f.read(BLOCK)
                except (OSError, EOFError, lzma.LZMAError) as exc:
                    self.on_notice(f"{path}: stopped reading at byte {offset + len(rest)}: {exc}")
                    more = b""
                data = rest + more
                if not more:
                    if data:
                        yield from parser.feed(data, offset)
                        self.read_bytes += len(data)
                    break
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    if len(data) < MAX_LINE:
                        rest = data  # one line longer than a block: keep reading it
                        continue
                    cut = len(data)  # a line this long is garbage: parsed (and kept) as it is
                yield from parser.feed(data[:cut], offset)
                self.read_bytes += cut
                offset += cut
                rest = data[cut:]
            yield from parser.flush()
