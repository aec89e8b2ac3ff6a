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

from importlib.util import find_spec

# Imported when the first directory is watched: reading a file to its end never needs it.
HAVE_WATCHDOG = find_spec("watchdog") is not None


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
                from watchdog.observers import Observer

                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            _schedule(self._observer, self._event, directory, recursive)
        except (OSError, RuntimeError):
            pass

    def close(self, timeout: float = 1.0) -> None:
        """Stop watching; waits at most `timeout` seconds for watchdog's thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout)


def _schedule(observer: Any, event: threading.Event, directory: str, recursive: bool) -> None:
    from watchdog import events as wd

    class Handler(wd.FileSystemEventHandler):
        def on_any_event(self, _: wd.FileSystemEvent) -> None:
            event.set()

    kinds: list[type[wd.FileSystemEvent]] = [
        wd.FileCreatedEvent, wd.FileMovedEvent, wd.FileDeletedEvent,
        wd.DirCreatedEvent, wd.DirMovedEvent, wd.DirDeletedEvent,
    ]
    observer.schedule(Handler(), directory, recursive=recursive, event_filter=kinds)
