"""The harvester: reads one open file from a cursor and cuts what it reads into whole lines.

It owns one descriptor, so it keeps reading a file after the file was renamed or deleted. Each
read is one pread of up to read_size bytes starting at the first byte not yet delivered: the
unterminated line at the end of the previous read is read again, not prepended (a chunk costs
one copy beyond the kernel's), and the copy of it that is kept only serves to notice a rewrite.
Nothing is delivered past the last newline until the file is closed for good; a line longer
than max_line_bytes is delivered in pieces, so memory stays bounded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Literal

from kamlog.tail.identity import FileIdentity, read_head
from kamlog.tail.items import Chunk, Notice


class Harvester:
    """One open file, its identity, and the offset of the first byte not yet delivered."""

    def __init__(
        self,
        fd: int,
        path: str,
        *,
        offset: int = 0,
        read_size: int = 1 << 20,
        max_line_bytes: int = 4 << 20,
    ) -> None:
        st = os.fstat(fd)
        self.fd = fd
        self.path = path
        self.head = read_head(fd)
        self.identity = FileIdentity.of(st, self.head)
        self.offset = offset
        self.size = st.st_size
        self.changed_at = time.monotonic()
        self.attached: str | None = path
        self._mtime_ns = st.st_mtime_ns
        self._read_pos = offset
        self._tail = b""
        self._cutting = False
        self._rewritten = False
        self._max_line = max(1, max_line_bytes)
        self._read_size = max(1, min(read_size, self._max_line))

    @classmethod
    def open(cls, path: str, **kwargs: int) -> Harvester:
        """Open `path` for reading; raises OSError when it cannot be opened."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return cls(fd, path, **kwargs)
        except BaseException:
            os.close(fd)
            raise

    @property
    def key(self) -> tuple[int, int]:
        """(device, inode) of the open file."""
        return self.identity.key

    @property
    def read_pos(self) -> int:
        """How far the file was read; bytes from `offset` to here are an unterminated line."""
        return self._read_pos

    def check(self) -> Literal["rewritten", "shrank"] | None:
        """Look at the file again: did it change under the cursor since the last look?

        "rewritten": its first bytes are not those seen before (copytruncate, or a truncation
        followed by new writes); "shrank": it is shorter than what was read but starts the same
        (cut by hand). Updates `size`, and `changed_at` when the size or mtime moved.
        """
        st = os.fstat(self.fd)
        if st.st_size == self.size and st.st_mtime_ns == self._mtime_ns and not self._rewritten:
            return None
        self.size, self._mtime_ns = st.st_size, st.st_mtime_ns
        self.changed_at = time.monotonic()
        head = read_head(self.fd)
        n = min(len(head), len(self.head))
        if self._rewritten or head[:n] != self.head[:n]:
            return "rewritten"
        if st.st_size < self._read_pos:
            return "shrank"
        if len(head) > len(self.head):
            self.head = head
            self.identity = FileIdentity.of(st, head)
        return None

    def seek(self, offset: int) -> None:
        """Continue from `offset`, forgetting the unterminated line read so far."""
        self.offset = self._read_pos = offset
        self._tail = b""
        self._cutting = False
        self._rewritten = False

    def restart(self, offset: int = 0) -> None:
        """Take the file as new (it was rewritten) and read it from `offset`."""
        st = os.fstat(self.fd)
        self.head = read_head(self.fd)
        self.identity = FileIdentity.of(st, self.head)
        self.size, self._mtime_ns = st.st_size, st.st_mtime_ns
        self.seek(offset)

    def harvest(self, limit: int) -> Iterator[Chunk | Notice]:
        """Read up to byte `limit`, yielding chunks of whole lines (and pieces of long ones)."""
        while self._read_pos < limit and not self._rewritten:
            end = self.offset + self._read_size
            if end <= self._read_pos:  # the line being read is longer than read_size
                end = self._read_pos + self._read_size
            want = min(limit, end) - self.offset
            data = os.pread(self.fd, want, self.offset)
            if not data.startswith(self._tail):
                self._rewritten = True
            if self._rewritten or len(data) == len(self._tail):
                return
            self._read_pos = self.offset + len(data)
            items = self._split(data)
            # Free the megabyte just read before the consumer gets its copy: with both alive,
            # glibc returns memory to the system on every free and reading is 5x slower.
            del data
            yield from items

    def finish(self) -> Chunk | None:
        """The unterminated last line as a partial chunk, for a file read for the last time."""
        if not self._tail:
            return None
        chunk = Chunk(self.path, self.identity, self.offset, self._tail, partial=True)
        self.offset = self._read_pos
        self._tail = b""
        return chunk

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _split(self, buf: bytes) -> list[Chunk | Notice]:
        items: list[Chunk | Notice] = []
        base, pos, limit = self.offset, 0, self._max_line
        while buf.find(b"\n", pos, pos + limit) < 0 and len(buf) - pos >= limit:
            if not self._cutting:
                self._cutting = True
                items.append(
                    Notice(
                        self.path,
                        "error",
                        f"the line at offset {base + pos} of {self.path} is longer than {limit}"
                        f" bytes; it is delivered in pieces of at most {limit} bytes",
                    )
                )
            items.append(Chunk(self.path, self.identity, base + pos, buf[pos : pos + limit], True))
            pos += limit
        end = buf.rfind(b"\n", pos) + 1
        if end > pos:
            data = buf if pos == 0 and end == len(buf) else buf[pos:end]
            items.append(Chunk(self.path, self.identity, base + pos, data))
            self._cutting = False
            pos = end
        self.offset = base + pos
        self._tail = buf[pos:]
        return items

    def __repr__(self) -> str:
        return f"Harvester({self.path!r}, offset={self.offset}, key={self.key})"
