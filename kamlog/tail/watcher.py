"""The watcher: compares two scans and says what happened to each file in between.

Filebeat's operations: a file was created, written, truncated, renamed, or deleted. A path that
now holds another inode is two events: the old inode was renamed (when the scan still finds it
under another name) or deleted, and a new file was created. The diff is pure, so it is tested
on plain dictionaries; the harvester still checks each open file itself, because a scan cannot
see a file that was truncated and rewritten past its old size between two polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kamlog.tail.scanner import FileStat


@dataclass(frozen=True, slots=True)
class Created:
    """A file (inode) appeared at `path` that the previous scan did not have there."""

    path: str
    stat: FileStat


@dataclass(frozen=True, slots=True)
class Written:
    """The file at `path` grew or was modified in place."""

    path: str
    old: FileStat
    new: FileStat


@dataclass(frozen=True, slots=True)
class Truncated:
    """The file at `path` is the same inode but shorter than before."""

    path: str
    old: FileStat
    new: FileStat


@dataclass(frozen=True, slots=True)
class Renamed:
    """The inode that was at `old_path` is now at `new_path` (both matched by the patterns)."""

    old_path: str
    new_path: str
    stat: FileStat


@dataclass(frozen=True, slots=True)
class Deleted:
    """The inode that was at `path` is gone from the scan: deleted, or moved out of the patterns."""

    path: str
    stat: FileStat


WatchEvent = Created | Written | Truncated | Renamed | Deleted


def diff(previous: Mapping[str, FileStat], current: Mapping[str, FileStat]) -> list[WatchEvent]:
    """The events that turn scan `previous` into scan `current`: renames and deletions first,
    then creations, then writes and truncations; each group in path order."""
    gone: list[WatchEvent] = []
    created: list[WatchEvent] = []
    changed: list[WatchEvent] = []
    new_home: dict[tuple[int, int], str] = {}
    for path in sorted(current):
        st = current[path]
        before = previous.get(path)
        if before is None or before.key != st.key:
            new_home.setdefault(st.key, path)
    renamed_to: set[str] = set()
    for path in sorted(previous):
        old = previous[path]
        now = current.get(path)
        if now is not None and now.key == old.key:
            if now.size < old.size:
                changed.append(Truncated(path, old, now))
            elif now.size != old.size or now.mtime_ns != old.mtime_ns:
                changed.append(Written(path, old, now))
            continue
        target = new_home.get(old.key)
        if target is not None and target not in renamed_to:
            renamed_to.add(target)
            gone.append(Renamed(path, target, current[target]))
        else:
            gone.append(Deleted(path, old))
    for path in sorted(current):
        st = current[path]
        before = previous.get(path)
        if (before is None or before.key != st.key) and path not in renamed_to:
            created.append(Created(path, st))
    return gone + created + changed
