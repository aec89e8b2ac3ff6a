"""What has been read but not yet stored: the registry may only say a file is done up to the
first record still waiting (in an open call, or in a batch not yet written), and a capture is
taken only once every message of it is stored.

After a crash the service reads again from the registry's offsets; what it reads twice has the
same document ids, so the stores keep it once. Nothing is lost, nothing is stored twice."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

from ..events import LogEvent
from ..tail.identity import FileIdentity
from ..tail.registry import Registry


class _File:
    __slots__ = ("identity", "path", "frontier", "waiting", "heap")

    def __init__(self, identity: FileIdentity, path: str) -> None:
        self.identity = identity
        self.path = path
        self.frontier = 0
        self.waiting: Counter[int] = Counter()  # offset -> records there not yet stored
        self.heap: list[int] = []  # the same offsets; stale ones are dropped lazily

    def low(self) -> int:
        heap, waiting = self.heap, self.waiting
        while heap and not waiting.get(heap[0]):
            heapq.heappop(heap)
        return min(heap[0], self.frontier) if heap else self.frontier


class Acks:
    """Per log file (device, inode): the records read and not yet stored, and the frontier its
    tailer reported; per capture path: the messages not yet stored."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.files: dict[tuple[int, int], _File] = {}
        self.captures: Counter[str] = Counter()
        self._changed: set[tuple[int, int]] = set()

    def read(self, identity: FileIdentity, path: str, events: Iterable[LogEvent], frontier: int) -> None:
        key = identity.key
        f = self.files.get(key)
        if f is None:
            f = self.files[key] = _File(identity, path)
        old = f.identity
        if identity.head_size < old.head_size or (identity.head_size == old.head_size and identity != old):
            f.frontier = 0  # truncated and written again in place (copytruncate)
        f.identity = identity  # its fingerprint grows with the file's first KiB
        waiting, heap = f.waiting, f.heap
        for event in events:
            offset = event.offset
            if not waiting[offset]:
                heapq.heappush(heap, offset)
            waiting[offset] += 1
        if frontier > f.frontier:
            f.frontier = frontier
        self._changed.add(key)

    def capture_read(self, path: str, count: int) -> None:
        self.captures[path] += count

    def stored(self, events: Iterable[LogEvent], capture_paths: Iterable[str]) -> None:
        files = self.files
        for event in events:
            key = event.file_id
            f = files.get(key) if key is not None else None
            if f is None:
                continue
            left = f.waiting[event.offset] - 1
            if left > 0:
                f.waiting[event.offset] = left
            else:
                f.waiting.pop(event.offset, None)
            self._changed.add(key)  # type: ignore[arg-type]
        captures = self.captures
        for path in capture_paths:
            if path in captures:
                captures[path] -= 1

    def capture_done(self, path: str) -> bool:
        """Whether every message read from the capture is stored (then forget it)."""
        if self.captures.get(path, 0) > 0:
            return False
        self.captures.pop(path, None)
        return True

    def commit(self) -> None:
        """Tell the registry how far each changed file is done, and write it."""
        for key in self._changed:
            f = self.files.get(key)
            if f is not None:
                self.registry.ack(f.identity, f.path, f.low())
        self._changed.clear()
        self.registry.flush()
        if len(self.files) > 64:  # rotated files, long done
            self.forget_idle()

    def forget_idle(self) -> None:
        """Files with nothing waiting whose registry entry is current need no state here."""
        for key in [k for k, f in self.files.items() if not f.waiting and k not in self._changed]:
            del self.files[key]
