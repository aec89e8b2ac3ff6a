"""Files replaced whole, atomically: a crash leaves either the old content or the new, never half
of one (the registries of the tailer and of the capture directory are written this way)."""

from __future__ import annotations

import os


def write_atomically(path: str, data: bytes, *, tmp: str | None = None, mode: int = 0o644) -> None:
    """Replace `path` with `data`: write `tmp` (default `path.tmp`), fsync it, rename it over
    `path`, then fsync the directory so that the rename itself survives a power loss. On a
    failure (OSError, raised) neither a temporary file nor a partial `path` is left behind."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = tmp or f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
