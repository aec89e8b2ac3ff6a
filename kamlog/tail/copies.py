"""Finding a file again by what it was: its inode after a rename, or the copy copytruncate made.

Both look only in the file's own directory (where logrotate puts rotated files unless `olddir`
says otherwise), and look at a bounded number of entries.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Container
from typing import Final

from kamlog.tail.identity import read_head
from kamlog.tail.scanner import COMPRESSED_SUFFIXES

MAX_ENTRIES: Final = 4096
MAX_CANDIDATES: Final = 64


def find_by_inode(directory: str, key: tuple[int, int], *, exclude: str | None = None) -> str | None:
    """The path in `directory` that is the file with this (device, inode), if there is one."""
    for name in _names(directory):
        path = os.path.join(directory, name)
        if path == exclude:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key and stat.S_ISREG(st.st_mode):
            return path
    return None


def find_copy(
    directory: str,
    starts_like: Callable[[bytes], bool],
    *,
    min_size: int,
    exclude: Container[tuple[int, int]] = (),
) -> str | None:
    """The most recently modified uncompressed file in `directory` of at least `min_size` bytes
    whose first bytes satisfy `starts_like`: the copy that copytruncate made of a file."""
    candidates: list[tuple[int, str]] = []
    for name in _names(directory):
        if name.endswith(COMPRESSED_SUFFIXES):
            continue
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size >= min_size and (st.st_dev, st.st_ino) not in exclude:
            candidates.append((st.st_mtime_ns, path))
    for _, path in sorted(candidates, reverse=True)[:MAX_CANDIDATES]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if starts_like(read_head(fd)):
                return path
        finally:
            os.close(fd)
    return None


def _names(directory: str) -> list[str]:
    try:
        with os.scandir(directory or ".") as it:
            return [entry.name for _, entry in zip(range(MAX_ENTRIES), it)]
    except OSError:
        return []


