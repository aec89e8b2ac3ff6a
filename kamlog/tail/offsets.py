"""Where to start reading: the offset of the last N lines, or of the end of the last line.

Both read backwards from the end in blocks, so the cost depends on N, not on the file's size.
"""

from __future__ import annotations

import os

BLOCK = 1 << 16


def tail_offset(path: str, lines: int, *, block: int = BLOCK) -> int:
    """The byte offset where the last `lines` lines of the file start, as `tail -n` counts them.

    An unterminated last line counts as a line; 0 lines is the end of the file; a file with
    fewer lines starts at 0.
    """
    if lines < 0:
        raise ValueError(f"the number of lines must be 0 or more, not {lines}")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if lines == 0 or size == 0:
            return size
        pos = size - 1 if os.pread(fd, 1, size - 1) == b"\n" else size
        wanted = lines
        while pos > 0:
            start = max(0, pos - block)
            data = os.pread(fd, pos - start, start)
            count = data.count(b"\n")
            if count < wanted:
                wanted -= count
                pos = start
                continue
            end = len(data)
            for _ in range(wanted):
                end = data.rfind(b"\n", 0, end)
            return start + end + 1
        return 0
    finally:
        os.close(fd)


def end_of_last_line(fd: int, size: int, *, block: int = BLOCK) -> int:
    """The offset just after the last newline before `size` (0 when there is none): where to
    follow a file 'from the end' without cutting a line that is being written."""
    pos = size
    while pos > 0:
        start = max(0, pos - block)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0
