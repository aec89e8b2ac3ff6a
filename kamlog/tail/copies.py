"""Finding a file again by what it was: its inode after a rename, or the copy copytruncate made.

Both look only in the file's own directory (where logrotate puts rotated files unless `olddir`
says otherwise), and look at a bounded number of entries.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Container, Sequence
from typing import Final, Literal

from kamlog.tail.identity import read_head
from kamlog.tail.scanner import COMPRESSED_SUFFIXES

MAX_ENTRIES: Final = 4096
MAX_CANDIDATES: Final = 64
# A new file is taken for a copy of a followed one when this many first bytes agree (all of
# them when the followed file is shorter).
COPY_EVIDENCE: Final = 64


def find_by_inode(
    directory: str, key: tuple[int, int], *, exclude: str | None = None
) -> str | None:
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
    test: Callable[[bytes], bool],
    *,
    min_size: int,
    exclude: Container[tuple[int, int]] = (),
) -> str | None:
    """The most recently modified uncompressed file in `directory` of at least `min_size` bytes
    whose first bytes pass `test`: the copy that copytruncate made of a file."""
    candidates: list[tuple[int, str]] = []
    for name in _names(directory):
        if name.endswith(COMPRESSED_SUFFIXES):
            continue
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in exclude:
            continue
        if st.st_size >= min_size:
            candidates.append((st.st_mtime_ns, path))
    for _, path in sorted(candidates, reverse=True)[:MAX_CANDIDATES]:
        if starts_like(path, test):
            return path
    return None


def copy_verdict(path: str, heads: Sequence[bytes]) -> Literal["copy", "new", "undecided"]:
    """Whether the new file at `path` is a copy of a followed file whose first bytes are one of
    `heads` (copytruncate's rotated file, when a glob also names it), is a new file, or is too
    short yet to tell (a copy being written)."""
    heads = [h for h in heads if h]
    if not heads:
        return "new"
    head = _head_of(path)
    if head is None:
        return "new"
    verdict: Literal["copy", "new", "undecided"] = "new"
    for known in heads:
        n = min(len(head), len(known))
        if n < min(COPY_EVIDENCE, len(known)):
            verdict = "undecided"
        elif head[:n] == known[:n]:
            return "copy"
    return verdict


def starts_like(path: str, test: Callable[[bytes], bool]) -> bool:
    """Whether the first bytes of the file at `path` pass `test` (false if it cannot be read)."""
    head = _head_of(path)
    return head is not None and test(head)


def _head_of(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return read_head(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _names(directory: str) -> list[str]:
    try:
        with os.scandir(directory or ".") as it:
            return [entry.name for _, entry in zip(range(MAX_ENTRIES), it)]
    except OSError:
        return []


