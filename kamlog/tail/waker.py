"""Wakes the follower early when inotify (through watchdog) reports a file created, moved or
deleted: a rotation, a new file, a file that was waited for.

Polling stays the truth, as in Filebeat and Vector: an event only ends the wait before the
next poll, so a lost or merged event costs latency, never data. Writes are left to the poll
(which backs off from 20 ms while lines flow to poll_interval when idle): watchdog handles each
inotify event in Python, about 160 us apiece, and queues them without bound, so a writer doing
thousands of writes a second would cost a core and unbounded memory. Without watchdog, or when
a directory cannot be watched, the follower just polls.
"""

from __future__ import annotations

import os
import threading
from typing import Any

try:
    from watchdog import events as _wd
    from watchdog.observers import Observer

    HAVE_WATCHDOG = True
except ImportError:  # pragma: no cover - watchdog is a dependency, polling still works without it
    HAVE_WATCHDOG = False


class Waker:
    """Sets `event` whenever something changes in one of the watched directories."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event
        self._observer: Any = None
        self._watched: set[tuple[str, bool]] = set()

    def watch(self, directory: str, recursive: bool = False) -> None:
        """Watch `directory` (once), or its nearest existing ancestor while it does not exist."""
        if not HAVE_WATCHDOG:
            return
        directory = os.path.abspath(directory)
        while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
            directory, recursive = os.path.dirname(directory), False
        if (directory, recursive) in self._watched:
            return
        self._watched.add((directory, recursive))
        try:
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            self._observer.schedule(
                _Handler(self._event), directory, recursive=recursive, event_filter=_EVENTS
            )
        except (OSError, RuntimeError):
            pass

    def close(self, timeout: float = 1.0) -> None:
        """Stop watching; waits at most `timeout` seconds for watchdog's thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout)


if HAVE_WATCHDOG:
    _EVENTS: list[type[_wd.FileSystemEvent]] = [
        _wd.FileCreatedEvent,
        _wd.FileMovedEvent,
        _wd.FileDeletedEvent,
        _wd.DirCreatedEvent,
        _wd.DirMovedEvent,
        _wd.DirDeletedEvent,
    ]

    class _Handler(_wd.FileSystemEventHandler):
        def __init__(self, event: threading.Event) -> None:
            self._event = event

        def on_any_event(self, event: _wd.FileSystemEvent) -> None:
            self._event.set()
