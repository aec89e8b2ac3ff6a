"""The registry: how far each file was processed, kept on disk to resume after a restart.

Offsets are stored by file identity (device + inode, with the fingerprint that tells a reused
inode apart), and only what the consumer acknowledged: a line is stored as done only once the
sink has it. The file is JSON, replaced atomically (write a temporary file, fsync, rename,
fsync the directory) so a crash leaves either the old or the new registry, never half of one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from kamlog.atomic import write_atomically
from kamlog.errors import RegistryError
from kamlog.tail.identity import HEAD_SIZE, FileIdentity

FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One file's acknowledged offset, the path it was read by, and when it was acknowledged."""

    identity: FileIdentity
    path: str
    offset: int
    updated: float


class Registry:
    """Acknowledged offsets by file identity, loaded from and flushed to one JSON file.

    `ack` only changes memory; `flush` writes when something changed. The latest
    acknowledgement of a file wins (after a truncation the offset goes down). Thread-safe, so a
    sink thread may acknowledge while another flushes. At most `max_entries` files are kept,
    the least recently acknowledged are dropped first.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_entries: int = 4096) -> None:
        self.path = os.fspath(path)
        self._max_entries = max_entries
        self._entries: dict[tuple[int, int], Entry] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._load()

    def ack(self, identity: FileIdentity, path: str, offset: int) -> None:
        """Record that everything before `offset` in this file was processed."""
        with self._lock:
            self._entries.pop(identity.key, None)
            self._entries[identity.key] = Entry(identity, path, offset, time.time())
            while len(self._entries) > self._max_entries:
                del self._entries[next(iter(self._entries))]
            self._dirty = True

    def get(self, key: tuple[int, int]) -> Entry | None:
        """The entry of the file with this (device, inode), if any (check its fingerprint)."""
        with self._lock:
            return self._entries.get(key)

    def __iter__(self) -> Iterator[Entry]:
        """The entries, least recently acknowledged first."""
        with self._lock:
            return iter(list(self._entries.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def flush(self) -> None:
        """Write the registry to disk if it changed since the last flush."""
        with self._lock:
            if not self._dirty:
                return
            document = {
                "version": FORMAT_VERSION,
                "entries": [_encode(entry) for entry in self._entries.values()],
            }
            self._dirty = False
        try:
            write_atomically(self.path, json.dumps(document, indent=1).encode())
        except OSError as exc:
            with self._lock:
                self._dirty = True
            raise RegistryError(f"cannot write the registry {self.path}: {exc.strerror}") from exc

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                document = json.loads(f.read())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read the registry {self.path}: {exc}") from exc
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise RegistryError(
                f"the registry {self.path} is not a version {FORMAT_VERSION} kamlog registry"
            )
        try:
            entries = [_decode(item) for item in document["entries"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"the registry {self.path} has an invalid entry: {exc}") from exc
        entries.sort(key=lambda entry: entry.updated)
        self._entries = {entry.identity.key: entry for entry in entries}


def _encode(entry: Entry) -> dict[str, Any]:
    return {
        "device": entry.identity.device,
        "inode": entry.identity.inode,
        "fingerprint": entry.identity.fingerprint,
        "path": entry.path,
        "offset": entry.offset,
        "updated": entry.updated,
    }


def _decode(item: dict[str, Any]) -> Entry:
    identity = FileIdentity(int(item["device"]), int(item["inode"]), str(item["fingerprint"]))
    if not 0 <= identity.head_size <= HEAD_SIZE:
        raise ValueError(f"fingerprint {identity.fingerprint!r}")
    return Entry(identity, str(item["path"]), int(item["offset"]), float(item["updated"]))
