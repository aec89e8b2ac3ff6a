"""The Follower: reads files named by paths and globs, like `cat`, or follows them like `tail -F`.

Each poll scans the patterns, lets the watcher say what changed (a new file, a rename, a
deletion), checks every open file for truncation, then reads. A rotated or deleted file stays
open and is read until it has been idle for close_inactive seconds, because the writer keeps
writing to its open descriptor until it reopens. Lines stay in order across a rotation: the
sizes of the open files are taken newest first, then the files are read oldest first, each up
to its size; whatever the writer put in the new file, it wrote after the last line of the old
one, which is then already read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Literal

from kamlog.tail import copies
from kamlog.tail.harvester import Harvester
from kamlog.tail.items import IDLE, Chunk, Idle, Notice
from kamlog.tail.offsets import end_of_last_line
from kamlog.tail.registry import Registry
from kamlog.tail.scanner import FileStat, Scan, Scanner
from kamlog.tail.waker import Waker
from kamlog.tail.watcher import Created, Deleted, Renamed, diff

Item = Chunk | Notice | Idle

# While lines flow, polls start this far apart (chunks stay large); each poll that finds
# nothing doubles the pause, up to poll_interval.
MIN_POLL_GAP = 0.02
# How long a new file too short to tell whether it is such a copy waits before it is read anyway.
COPY_WAIT = 1.0


class Follower:
    """Reads the files that `paths` name and yields Chunk, Notice and (when following) Idle.

    follow=False reads what there is and stops. follow=True behaves like `tail -F`: it waits
    for missing files and new glob matches and survives rotation by rename or copytruncate,
    deletion and truncation without losing or repeating a line. `start` applies to files
    present at startup that neither `start_offsets` (by path or by the pattern given) nor the
    registry place; "end" starts after the last complete line. A Follower is iterated once;
    stop() may be called from any thread.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        follow: bool = True,
        start: Literal["beginning", "end"] = "beginning",
        start_offsets: Mapping[str, int] | None = None,
        registry: Registry | None = None,
        poll_interval: float = 0.25,
        read_size: int = 1 << 20,
        max_line_bytes: int = 4 << 20,
        close_inactive: float = 5.0,
    ) -> None:
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise ValueError("no path is configured")
        if start not in ("beginning", "end"):
            raise ValueError(f"start must be 'beginning' or 'end', not {start!r}")
        if poll_interval <= 0 or read_size <= 0 or max_line_bytes <= 0 or close_inactive < 0:
            raise ValueError(
                "poll_interval, read_size and max_line_bytes must be positive,"
                " close_inactive must not be negative"
            )
        self._scanner = Scanner(paths)
        self._follow = follow
        self._start = start
        self._start_offsets = dict(start_offsets or {})
        self._registry = registry
        self._poll_interval = poll_interval
        self._read_size = read_size
        self._max_line = max_line_bytes
        self._inactive_after = close_inactive
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._harvesters: list[Harvester] = []
        self._by_key: dict[tuple[int, int], Harvester] = {}
        self._copies: set[tuple[int, int]] = set()
        self._deferred: dict[str, float] = {}
        self._opened_paths: set[str] = set()
        self._missing: set[str] = set()
        self._unreadable: set[str] = set()
        self._iterated = False

    def stop(self) -> None:
        """Ask the iteration to end; it does at its next step, at most one poll interval away."""
        self._stop.set()
        self._wake.set()

    def __iter__(self) -> Iterator[Item]:
        if self._iterated:
            raise RuntimeError("a Follower can be iterated only once")
        self._iterated = True
        return self._run()

    def _run(self) -> Iterator[Item]:
        waker = Waker(self._wake) if self._follow else None
        try:
            if waker is not None:
                self._watch(waker)
            scan = self._scanner.scan()
            for item in self._startup(scan):
                yield item
                if self._stop.is_set():
                    return
            if self._follow:
                yield from self._follow_loop(scan.files, waker)
            else:
                yield from self._read_once()
        finally:
            if waker is not None:
                waker.close()
            for h in self._harvesters:
                h.close()
            self._harvesters.clear()
            self._by_key.clear()

    def _read_once(self) -> Iterator[Item]:
        for h in list(self._harvesters):
            for item in self._read(h, os.fstat(h.fd).st_size):
                yield item
                if self._stop.is_set():
                    return
            last = h.finish()
            if last is not None:
                yield last
            self._forget(h)

    def _follow_loop(self, files: dict[str, FileStat], waker: Waker | None) -> Iterator[Item]:
        previous = files
        pause = min(MIN_POLL_GAP, self._poll_interval)
        while True:
            polled_at = time.monotonic()
            progressed = False
            for item in self._read_all():
                yield item
                progressed = progressed or isinstance(item, Chunk)
                if self._stop.is_set():
                    return
            for item in self._close_inactive():
                yield item
            if progressed:
                pause = min(MIN_POLL_GAP, self._poll_interval)
            else:
                yield IDLE
                pause = min(pause * 2, self._poll_interval)
            if self._stop.is_set():
                return
            self._wake.wait(polled_at + pause - time.monotonic())
            self._wake.clear()
            if self._stop.is_set():
                return
            if waker is not None:
                self._watch(waker)
            scan = self._scanner.scan()
            for item in self._apply(previous, scan):
                yield item
            previous = scan.files

    def _watch(self, waker: Waker) -> None:
        for directory, recursive in self._scanner.directories():
            waker.watch(directory, recursive)

    # --- startup -------------------------------------------------------------------------

    def _startup(self, scan: Scan) -> Iterator[Notice]:
        if self._registry is not None:
            yield from self._resume(scan)
        for path, st in scan.files.items():
            if st.key not in self._by_key:
                yield from self._start_file(path, scan.pattern_of[path])
        for pattern, reason in scan.missing.items():
            self._missing.add(pattern)
            if self._follow:
                yield Notice(pattern, "waiting", f"{reason}; waiting for it to appear")
            else:
                yield Notice(pattern, "error", reason)

    def _start_file(self, path: str, pattern: str) -> Iterator[Notice]:
        h = yield from self._open(path)
        if h is None:
            return
        offset, where = yield from self._initial_offset(h, path, pattern)
        h.seek(offset)
        self._add(h)
        if self._follow:
            yield Notice(path, "following", f"following {path} from {where}")

    def _initial_offset(
        self, h: Harvester, path: str, pattern: str
    ) -> Generator[Notice, None, tuple[int, str]]:
        given = self._start_offsets.get(path, self._start_offsets.get(pattern))
        if given is not None:
            offset = max(0, min(given, h.size))
            return offset, f"offset {offset}"
        if self._registry is not None:
            entry = self._registry.get(h.key)
            if entry is not None and entry.identity.matches(h.head) and entry.offset <= h.size:
                return entry.offset, f"offset {entry.offset}, where it was left"
            if entry is not None:
                yield Notice(
                    path,
                    "truncated",
                    f"{path} was truncated or rewritten while kamlog was stopped;"
                    " reading it again from the start",
                )
                return 0, "the start"
            if any(e.path == path for e in self._registry):
                return 0, "the start (it is new since kamlog last ran)"
        if self._start == "end":
            offset = end_of_last_line(h.fd, h.size)
            return offset, f"the end (offset {offset})"
        return 0, "the start"

    def _resume(self, scan: Scan) -> Iterator[Notice]:
        """Finish what was left of files rotated while kamlog was stopped.

        A registry entry whose file no longer holds its name (or holds it with other content,
        after copytruncate) is looked for beside that name: by inode (renamed), else by its
        fingerprint (copied). What it has beyond the stored offset is read before the files
        that hold the names now.
        """
        assert self._registry is not None
        present = {st.key: path for path, st in scan.files.items()}
        for entry in self._registry:
            key = entry.identity.key
            if key in self._by_key or not self._scanner.matches(entry.path):
                continue
            directory = os.path.dirname(entry.path)
            if key in present:
                if copies.starts_like(present[key], entry.identity.matches):
                    continue
                path = None
            else:
                path = copies.find_by_inode(directory, key)
                if path is not None and not copies.starts_like(path, entry.identity.matches):
                    path = None
            how = "rotated to"
            if path is None and entry.identity.head_size >= copies.COPY_EVIDENCE:
                how = "copied to"
                path = copies.find_copy(
                    directory,
                    entry.identity.matches,
                    min_size=entry.offset,
                    exclude=set(self._by_key) | {key},
                )
            if path is None:
                continue
            h = yield from self._open(path)
            if h is None:
                continue
            if h.size <= entry.offset and path not in scan.files:
                h.close()
                continue
            h.seek(entry.offset)
            h.attached = path if path in scan.files else None
            self._add(h)
            yield Notice(
                path,
                "rotated",
                f"{entry.path} was {how} {path} while kamlog was stopped;"
                f" reading the rest of it from offset {entry.offset}",
            )

    # --- one poll ------------------------------------------------------------------------

    def _apply(self, previous: Mapping[str, FileStat], scan: Scan) -> Iterator[Notice]:
        for event in diff(previous, scan.files):
            if isinstance(event, Renamed):
                h = self._by_key.get(event.stat.key)
                if h is None:
                    yield from self._created(event.new_path, event.stat)
                    continue
                h.attached = event.new_path
                yield Notice(
                    h.path,
                    "rotated",
                    f"{event.old_path} was renamed to {event.new_path}; following it there",
                )
            elif isinstance(event, Deleted):
                h = self._by_key.get(event.stat.key)
                if h is not None and h.attached == event.path:
                    yield self._detach(h, event.path)
            elif isinstance(event, Created):
                yield from self._created(event.path, event.stat)
        for path in list(self._deferred):
            st = scan.files.get(path)
            if st is None:
                del self._deferred[path]
            else:
                yield from self._created(path, st)
        for path in list(self._unreadable):
            st = scan.files.get(path)
            if st is None:
                self._unreadable.discard(path)
            elif st.key not in self._by_key:
                yield from self._created(path, st, report=False)
        for pattern, reason in scan.missing.items():
            if pattern not in self._missing:
                self._missing.add(pattern)
                yield Notice(pattern, "waiting", f"{reason}; waiting for it to appear")
        self._missing.intersection_update(scan.missing)

    def _created(self, path: str, st: FileStat, *, report: bool = True) -> Iterator[Notice]:
        known = self._by_key.get(st.key)
        if known is not None:
            known.attached = path
            self._deferred.pop(path, None)
            return
        if st.key in self._copies:
            return
        directory = os.path.dirname(path)
        verdict = copies.copy_verdict(
            path,
            [
                h.head
                for h in self._harvesters
                if h.attached is not None and os.path.dirname(h.attached) == directory
            ],
        )
        if verdict == "undecided":
            first_seen = self._deferred.setdefault(path, time.monotonic())
            if time.monotonic() - first_seen < COPY_WAIT:
                return
        self._deferred.pop(path, None)
        if verdict == "copy":
            self._copies.add(st.key)
            return
        reopened = path in self._opened_paths
        h = yield from self._open(path, report=report)
        if h is None:
            return
        self._add(h)
        if reopened:
            yield Notice(path, "reopened", f"{path} is a new file; following it from the start")
        else:
            yield Notice(path, "created", f"{path} appeared; following it from the start")

    def _detach(self, h: Harvester, path: str) -> Notice:
        h.attached = None
        linked = True
        try:
            linked = os.fstat(h.fd).st_nlink > 0
        except OSError:
            pass
        if not linked:
            return Notice(
                h.path,
                "deleted",
                f"{path} was deleted; reading what is left of it until it has been idle"
                f" for {self._inactive_after:g}s",
            )
        moved_to = copies.find_by_inode(os.path.dirname(path), h.key, exclude=path)
        where = f" to {moved_to}" if moved_to else ""
        return Notice(h.path, "rotated", f"{path} was rotated{where}; reading the rest of it")

    def _read_all(self) -> Iterator[Item]:
        limits: dict[int, int] = {}
        for h in reversed(list(self._harvesters)):
            try:
                change = h.check()
            except OSError as exc:
                yield Notice(h.path, "error", f"cannot read {h.path}: {exc.strerror}")
                self._forget(h)
                continue
            if change is not None:
                yield from self._truncated(h, change)
            limits[id(h)] = h.size
        for h in list(self._harvesters):
            if h in self._harvesters:
                yield from self._read(h, limits.get(id(h), h.size))

    def _read(self, h: Harvester, limit: int) -> Iterator[Item]:
        try:
            yield from h.harvest(limit)
        except OSError as exc:
            yield Notice(h.path, "error", f"cannot read {h.path}: {exc.strerror}")
            self._forget(h)

    def _truncated(self, h: Harvester, change: str) -> Iterator[Item]:
        """A followed file was truncated or rewritten: read what its copy (copytruncate's
        rotated file) has beyond our offset, then read the file again."""
        path = h.attached or h.path
        offset, read_pos, head = h.offset, h.read_pos, h.head
        restart_at = 0 if change == "rewritten" else min(offset, h.size)
        copy = None
        if head:
            copy = copies.find_copy(
                os.path.dirname(path),
                lambda first: first.startswith(head),
                min_size=offset,
                exclude=set(self._by_key),
            )
        if copy is not None:
            c = yield from self._open(copy)
            if c is not None:
                c.seek(offset)
                c.attached = copy if self._scanner.matches(copy) else None
                self._add(c, before=h)
                self._copies.discard(c.key)
                yield Notice(
                    h.path,
                    "truncated",
                    f"{path} was truncated (copytruncate); reading its old content from {copy}"
                    f" from offset {offset}, then {path} again from offset {restart_at}",
                )
                h.restart(restart_at)
                return
        if restart_at < offset:
            last = h.finish()
            if last is not None:
                yield last
        what = "rewritten in place" if change == "rewritten" else f"truncated to {h.size} bytes"
        yield Notice(
            h.path,
            "truncated",
            f"{path} was {what} after {read_pos} bytes had been read; reading it again from"
            f" offset {restart_at}",
        )
        h.restart(restart_at)

    def _close_inactive(self) -> Iterator[Chunk]:
        now = time.monotonic()
        for h in list(self._harvesters):
            if (
                h.attached is None
                and h.read_pos >= h.size
                and now - h.changed_at >= self._inactive_after
            ):
                last = h.finish()
                if last is not None:
                    yield last
                self._forget(h)

    # --- bookkeeping ---------------------------------------------------------------------

    def _open(self, path: str, *, report: bool = True) -> Generator[Notice, None, Harvester | None]:
        try:
            h = Harvester.open(path, read_size=self._read_size, max_line_bytes=self._max_line)
        except OSError as exc:
            self._unreadable.add(path)
            if report:
                yield Notice(path, "error", f"cannot open {path}: {exc.strerror}")
            return None
        self._unreadable.discard(path)
        return h

    def _add(self, h: Harvester, *, before: Harvester | None = None) -> None:
        index = self._harvesters.index(before) if before is not None else len(self._harvesters)
        self._harvesters.insert(index, h)
        self._by_key[h.key] = h
        if h.attached is not None:
            self._opened_paths.add(h.attached)

    def _forget(self, h: Harvester) -> None:
        h.close()
        if h in self._harvesters:
            self._harvesters.remove(h)
        if self._by_key.get(h.key) is h:
            del self._by_key[h.key]
