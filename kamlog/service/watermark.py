"""How far a capture directory is complete in time: the first packet of the oldest file tcpdump
may still be writing (its packets are still to come), or now.

A file unchanged for `closed_after` seconds is closed by the capture source's own rule, and is
taken at the next poll; so the files whose packets may still come are the ones changed more
recently than that and not yet read whole."""

from __future__ import annotations

import glob
import os
import time
from ..capture.files import open_capture


class CaptureWatermark:
    def __init__(self, pattern: str, closed_after: float) -> None:
        self.pattern = pattern
        self.closed_after_ns = int(closed_after * 1e9)
        self.read: set[tuple[int, int, int]] = set()  # (device, inode, size) of the files read whole
        self._first: dict[tuple[int, int], int] = {}

    def was_read(self, key: tuple[int, int], size: int) -> None:
        self.read.add((*key, size))

    def __call__(self, now_ns: int | None = None) -> int:
        now = time.time_ns() if now_ns is None else now_ns
        mark = now
        for path in glob.glob(self.pattern):
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_mtime_ns < now - self.closed_after_ns or (*key, st.st_size) in self.read:
                continue
            first = self._first.get(key)
            if first is None:
                first = _first_packet_ns(path)
                if first is not None:
                    self._first[key] = first
            if first is not None and first < mark:
                mark = first
        if len(self._first) > 1024:
            self._first.clear()
        return mark


def _first_packet_ns(path: str) -> int | None:
    """The first frame's time, or None while the file holds none (or is no capture)."""
    frames = open_capture(path)
    try:
        return next(frames).ts_ns
    except Exception:  # a file being written may end anywhere: no time from it yet
        return None
    finally:
        close = getattr(frames, "close", None)  # a generator: closing it closes the file
        if close is not None:
            close()
