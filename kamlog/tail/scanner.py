"""The scanner: expands the configured paths and globs into the regular files they name now.

A scan is a snapshot, one os.stat per file; the watcher compares two of them. Globs skip
compressed files (logrotate's `.gz` and friends), which are not text a tailer can follow.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

COMPRESSED_SUFFIXES: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".zip")


@dataclass(frozen=True, slots=True)
class FileStat:
    """What one scan saw of one file."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        """The FileStat of an os.stat result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @property
    def key(self) -> tuple[int, int]:
        """(device, inode), the file's identity across renames."""
        return (self.device, self.inode)


@dataclass(slots=True)
class Scan:
    """One snapshot: the files found (path -> stat), the pattern that found each, and the
    patterns that found nothing, with a sentence saying why."""

    files: dict[str, FileStat] = field(default_factory=dict)
    pattern_of: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def is_glob(pattern: str) -> bool:
    """Whether a path contains glob magic (*, ? or [)."""
    return any(c in pattern for c in "*?[")


def watch_directory(pattern: str) -> tuple[str, bool]:
    """The directory whose changes concern `pattern`, and whether to watch it recursively
    (when the magic is in a directory part, e.g. /var/log/*/kamailio.log)."""
    directory = os.path.dirname(pattern) or "."
    if not is_glob(directory):
        return directory, False
    parts = directory.split(os.sep)
    fixed = os.sep.join(parts[: next(i for i, p in enumerate(parts) if is_glob(p))])
    if not fixed:
        fixed = os.sep if directory.startswith(os.sep) else "."
    return fixed, True


class Scanner:
    """Finds the regular files that a list of paths and globs names, in a stable order."""

    def __init__(
        self, patterns: Sequence[str], *, skip_suffixes: Iterable[str] = COMPRESSED_SUFFIXES
    ) -> None:
        self.patterns = tuple(patterns)
        self._skip = tuple(skip_suffixes)

    def directories(self) -> list[tuple[str, bool]]:
        """The directories to watch for changes, each with whether to watch it recursively."""
        return sorted({watch_directory(pattern) for pattern in self.patterns})

    def matches(self, path: str) -> bool:
        """Whether one of the patterns names `path`."""
        return any(
            fnmatch.fnmatchcase(path, p) if is_glob(p) else path == p for p in self.patterns
        )

    def scan(self) -> Scan:
        """Stat every file the patterns name now. A file named twice is listed once."""
        result = Scan()
        for pattern in self.patterns:
            if is_glob(pattern):
                found = self._scan_glob(pattern, result)
                if not found:
                    result.missing[pattern] = f"no file matches {pattern}"
            else:
                reason = self._scan_path(pattern, result)
                if reason:
                    result.missing[pattern] = reason
        return result

    def _scan_glob(self, pattern: str, result: Scan) -> int:
        found = 0
        for path in sorted(glob.glob(pattern)):
            if path.endswith(self._skip):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found += 1
                if path not in result.files:
                    result.files[path] = FileStat.of(st)
                    result.pattern_of[path] = pattern
        return found

    def _scan_path(self, path: str, result: Scan) -> str | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return f"{path} does not exist"
        except OSError as exc:
            return f"{path} cannot be read: {exc.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is not a regular file"
        if path not in result.files:
            result.files[path] = FileStat.of(st)
            result.pattern_of[path] = path
        return None
