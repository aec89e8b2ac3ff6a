"""The spool: batches of Documents kept on disk while Elasticsearch cannot take them, so that the
collector can acknowledge what it read (and advance its registry) before the cluster has it.

Each batch is one segment file named by a sequence number, so the oldest is shipped first, also
after a restart. A segment is written to a temporary file, fsynced, renamed into place and the
directory fsynced: once `put` returns the batch survives a crash, and a crash mid-write leaves
only a temporary file, removed at the next start. A segment opens with a header holding its
document count, its body's length and a BLAKE2b digest of the body, so a truncated or damaged
one is recognised, moved to `corrupt/` and counted, never blocking the ones behind it.

The spool is bounded: once it holds `max_bytes`, `put` raises SpoolFull and the caller stops
reading (back-pressure) until the shipper has emptied some of it; nothing is dropped."""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Final

import orjson

from ..atomic import write_atomically
from ..errors import KamlogError, SinkFull
from ..store.documents import Document

MAGIC: Final = b"KAMLOG-SPOOL-1"
SUFFIX: Final = ".seg"
TEMPORARY: Final = ".tmp"
CORRUPT: Final = "corrupt"
_NAME = re.compile(r"^(\d{20})\.seg$")
_HEADER_MAX = 128
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class SpoolError(KamlogError):
    """The spool directory cannot be created, read or written."""


class SpoolFull(SpoolError, SinkFull):
    """The spool holds its maximum (or the disk under it is full): reading must pause until the
    shipper has sent some of it to the cluster."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One spooled batch, as `oldest` read it back."""

    path: str
    sequence: int
    documents: list[Document]


@dataclass(slots=True)
class _Entry:
    path: str
    size: int
    documents: int


class Spool:
    """Segments in `directory`, oldest first. `put` is for the collector's thread, `oldest` and
    `remove` for the shipper's: the two may run at once. `on_put`, when set, is called after each
    put (the shipper's `wake`), so that a new segment is shipped at once rather than at the next
    poll."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise SpoolError(f"the spool's maximum size must be positive, not {max_bytes}")
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        self.on_put: Callable[[], None] | None = None
        self.corrupt = 0  # segments moved to corrupt/ by this process
        self.last_corrupt: str | None = None  # why the latest one was, as a sentence
        self._lock = threading.Lock()  # the index and the counters
        self._write_lock = threading.Lock()  # puts, one at a time, so sequence order is file order
        self._entries: dict[int, _Entry] = {}
        self._size = 0
        self._documents = 0
        try:
            os.makedirs(self.directory, exist_ok=True)
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            raise SpoolError(f"cannot open the spool directory {self.directory}: {exc.strerror}") from None
        found: list[tuple[int, _Entry]] = []
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith(TEMPORARY):  # a put that a crash interrupted: never acknowledged
                try:
                    os.unlink(path)
                except OSError:
                    pass
                continue
            match = _NAME.match(name)
            if match is None:
                continue
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            found.append((int(match.group(1)), _Entry(path, size, _count(path))))
        found.sort(key=lambda item: item[0])
        for sequence, entry in found:
            self._entries[sequence] = entry
            self._size += entry.size
            self._documents += entry.documents
        self._next = found[-1][0] + 1 if found else 0

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def segments(self) -> int:
        return len(self._entries)

    @property
    def documents(self) -> int:
        """Documents waiting (from the segments' headers: a damaged one may count wrong)."""
        return self._documents

    def has_room(self) -> bool:
        return self._size < self.max_bytes

    def put(self, documents: Sequence[Document]) -> None:
        """Keeps the batch as one segment; durable when this returns. Raises SpoolFull when the
        spool already holds `max_bytes` (a batch may take it over by its own size, never more),
        or when the disk is full."""
        if not documents:
            return
        data = _encode(documents)
        with self._write_lock:
            with self._lock:
                if self._size >= self.max_bytes:
                    raise SpoolFull(f"the spool {self.directory} is full ({self._size} bytes of {self.max_bytes}): "
                                    "reading pauses until Elasticsearch has taken some of it")
                sequence = self._next
                self._next += 1
            path = os.path.join(self.directory, f"{sequence:020d}{SUFFIX}")
            _write_durably(path, data, self.directory)
            with self._lock:
                self._entries[sequence] = _Entry(path, len(data), len(documents))
                self._size += len(data)
                self._documents += len(documents)
        if self.on_put is not None:
            self.on_put()

    def oldest(self) -> Segment | None:
        """The oldest segment, read back; None when the spool is empty. A segment that cannot be
        read or fails its checks is moved to `corrupt/`, counted, and the next one is tried."""
        while True:
            with self._lock:
                if not self._entries:
                    return None
                sequence, entry = next(iter(self._entries.items()))
            try:
                with open(entry.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:  # removed behind the spool's back: nothing to ship
                self._forget(sequence)
                continue
            except OSError as exc:
                self._set_aside(sequence, entry, f"cannot be read: {exc.strerror}")
                continue
            try:
                documents = _decode(data)
            except ValueError as exc:
                self._set_aside(sequence, entry, str(exc))
                continue
            return Segment(entry.path, sequence, documents)

    def remove(self, segment: Segment) -> None:
        """Forgets a segment the cluster has acknowledged. No fsync: if a crash undoes the
        unlink, the segment is sent again and the cluster answers that it has it already."""
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SpoolError(f"cannot remove the spool segment {segment.path}: {exc.strerror}") from None
        self._forget(segment.sequence)

    def _forget(self, sequence: int) -> _Entry | None:
        with self._lock:
            entry = self._entries.pop(sequence, None)
            if entry is not None:
                self._size -= entry.size
                self._documents -= entry.documents
            return entry

    def _set_aside(self, sequence: int, entry: _Entry, why: str) -> None:
        aside = os.path.join(self.directory, CORRUPT)
        target = os.path.join(aside, os.path.basename(entry.path))
        where = f"moved to {aside}"
        try:
            os.makedirs(aside, exist_ok=True)
            n = 1
            while os.path.exists(target):
                target = os.path.join(aside, f"{os.path.basename(entry.path)}.{n}")
                n += 1
            os.replace(entry.path, target)
        except OSError as exc:
            # Left where it is, but out of the queue until the next start tries again.
            where = f"left in place (cannot move it to {aside}: {exc.strerror})"
        self._forget(sequence)
        with self._lock:
            self.corrupt += 1
            self.last_corrupt = f"the spool segment {entry.path} {why}; {where}"


def _encode(documents: Sequence[Document]) -> bytes:
    body = b"".join(orjson.dumps(list(doc)) + b"\n" for doc in documents)
    digest = blake2b(body, digest_size=16).hexdigest().encode()
    return b"%s %d %d %s\n%s" % (MAGIC, len(documents), len(body), digest, body)


def _header(data: bytes) -> tuple[int, int, bytes, int]:
    end = data.find(b"\n", 0, _HEADER_MAX)
    parts = data[:end].split(b" ") if end > 0 else []
    if len(parts) != 4 or parts[0] != MAGIC or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError("has no spool header")
    return int(parts[1]), int(parts[2]), parts[3], end + 1


def _count(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return _header(f.read(_HEADER_MAX))[0]
    except (OSError, ValueError):
        return 0


def _decode(data: bytes) -> list[Document]:
    count, length, digest, start = _header(data)
    body = data[start:]
    if len(body) != length:
        raise ValueError(f"is truncated or too long ({len(body)} bytes of body, its header says {length})")
    if blake2b(body, digest_size=16).hexdigest().encode() != digest:
        raise ValueError("fails its checksum")
    documents = []
    for n, line in enumerate(body.split(b"\n")[:-1], 1):
        try:
            fields = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ValueError(f"has a line {n} that is not JSON") from None
        if not (isinstance(fields, list) and len(fields) == 6 and isinstance(fields[0], str)
                and isinstance(fields[1], str) and isinstance(fields[2], int)
                and (fields[3] is None or isinstance(fields[3], str)) and isinstance(fields[4], int)
                and isinstance(fields[5], str)):
            raise ValueError(f"has a line {n} that is not a document")
        documents.append(Document(*fields))
    if len(documents) != count:
        raise ValueError(f"holds {len(documents)} documents, its header says {count}")
    return documents


def _write_durably(path: str, data: bytes, directory: str) -> None:
    try:
        write_atomically(path, data, tmp=path + TEMPORARY, mode=0o600)
    except OSError as exc:
        try:
            os.unlink(path)  # renamed, but its directory not synced: not known to be durable
        except OSError:
            pass
        if exc.errno in _FULL_ERRNOS:
            raise SpoolFull(f"the disk under the spool {directory} is full: reading pauses until "
                            "Elasticsearch has taken some of the spool") from None
        raise SpoolError(f"cannot write the spool segment {path}: {exc.strerror}") from None