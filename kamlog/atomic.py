"""Files replaced whole, atomically: a crash leaves either the old content or the new, never half
of one (the registries of the tailer and of the capture directory are written this way)."""

from __future__ import annotations

import os


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with `data`: write `path.tmp`, fsync it, rename it over `path`, then fsync
    the directory so that the rename itself survives a power loss."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
