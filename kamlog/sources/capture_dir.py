"""The rotating-capture directory: the files `tcpdump -G`/`-C` leaves behind, each handed over
once tcpdump has closed it, exactly once, across restarts.

tcpdump never says when it closes a file, so a file is judged closed when
- a newer capture matching the pattern exists: tcpdump closes a file before it opens the next
  (`-C`: sip.pcap, sip.pcap1, ...; `-G`: a name per period; `-W` reuses the names in a ring by
  rewriting them in place), so a file with an older mtime than another is finished. "Newer" is
  strictly newer: the kernel stamps mtimes with a coarse clock, and a file closed and its successor
  opened in the same tick have the same mtime, so neither is taken on that ground;
- or it has not changed (size, mtime) for `closed_after` seconds: `-G` rotates only when the next
  packet arrives, so the last file of a quiet period would otherwise wait for the next call.

A capture is taken again when it grew after it was taken (tcpdump was still writing after a quiet
period): the service reads it whole again, and its events keep their ids (the capture's identity
and their frame numbers), so the store drops the repeats. A name reused by the ring is a new
capture (its first bytes differ). Compressed captures (`tcpdump -z gzip`) are read too; a gzip
copy of a capture already taken is recognised by its first bytes and size and not taken again.

What was taken is kept in a JSON state file, replaced atomically after each `taken`, by file
(device, inode) with the fingerprint of its first bytes. Entries of files that are gone are
dropped, and at most `max_entries` are kept.
"""

from __future__ import annotations

import glob
import json
import lzma
import os
import stat
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Final

from ..atomic import write_atomically
from ..capture.files import COMPRESSED, natural_key
from ..correlate.inputs import CAPTURE_MAGICS, open_decompressed
from ..errors import RegistryError, SourceError
from .pcap import CaptureReader

if TYPE_CHECKING:
    from ..store.documents import Identities

#: A capture's identity is its first 512 bytes, decompressed (as for `kamlog index`).
HEAD: Final = 512
FORMAT_VERSION: Final = 1
_SUFFIXES: Final = (".gz", ".bz2", ".xz")
#: The shortest whole header: classic pcap's 24 bytes (a pcapng's is longer).
_MIN_HEADER: Final = 24


@dataclass(frozen=True, slots=True)
class ClosedCapture:
    """One capture file that tcpdump has finished with, as `CaptureDirectory.poll` offers it."""

    path: str
    key: tuple[int, int]  # (st_dev, st_ino)
    fingerprint: str  # "<n>:<blake2b hex of the first n bytes, decompressed>", n <= 512
    size: int  # st_size when it was judged closed
    # What the ids of its events are made from: blake2b of its first 512 bytes, as
    # `Identities` computes it; for a capture shorter than that when first taken, salted with
    # its (device, inode), since every header-only file of one tcpdump starts alike.
    identity: bytes


class CaptureGone(SourceError):
    """The file no longer holds the capture (deleted, or its name reused by the ring)."""


@dataclass(slots=True)
class CaptureDirCounts:
    """What a CaptureDirectory did since it was made."""

    seen: int = 0  # files (path, device, inode) matching the pattern
    taken: int = 0  # captures acknowledged with `taken`
    skipped: int = 0  # files that are not captures, or cannot be read (each once)
    copies: int = 0  # compressed copies of captures already taken, not offered
    # Why each skipped file still present was skipped, by path.
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Taken:
    key: tuple[int, int]
    path: str
    fingerprint: str
    identity: bytes
    size: int
    at: float  # wall time it was taken


@dataclass(slots=True)
class _File:
    """One file as the last polls saw it; `since` is when (by the clock) it last changed."""

    path: str
    key: tuple[int, int]
    size: int
    mtime_ns: int
    since: float
    compressed: bool
    head: bytes
    kind: str  # "capture", "pending" (no whole header yet), "cut" (compressed data ends early), "other"
    reason: str = ""


class CaptureDirectory:
    """Watches one glob (e.g. /var/spool/kamlog/sip*.pcap*) for capture files tcpdump has closed.

    `poll` offers each closed capture once; the service reads it and, once every event of it is
    acknowledged by its sink, calls `taken` (which writes the state file) or, if it could not,
    `release` (offered again at the next poll). Thread-safe: a sink thread may call `taken` while
    another polls. `clock` is monotonic seconds (injectable for tests)."""

    def __init__(self, pattern: str, state_path: str, *, closed_after: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 4096) -> None:
        self.pattern = pattern
        self.state_path = os.path.abspath(state_path)
        self.closed_after = closed_after
        self.counters = CaptureDirCounts()
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._skipped: dict[tuple[int, int], str] = {}
        self._offered: dict[tuple[int, int], ClosedCapture] = {}
        self._taken: dict[tuple[int, int], _Taken] = self._load()

    def poll(self) -> list[ClosedCapture]:
        """Captures now closed and not yet taken (or grown since taken), and not offered already,
        oldest first (by mtime, then natural name order: sip.pcap2 before sip.pcap10)."""
        with self._lock:
            now = self._clock()
            files = self._scan(now)
            newest = max((f.mtime_ns for f in files if not f.compressed and f.kind in ("capture", "pending")),
                         default=None)
            out: list[tuple[int, list[str | int], ClosedCapture]] = []
            changed = False
            for f in files:
                if f.kind == "other" or (f.kind == "cut" and self._closed(f, now, newest)):
                    self._skip(f)
                elif f.kind == "capture" and self._closed(f, now, newest):
                    capture, copied = self._judge(f)
                    changed |= copied
                    if capture is not None:
                        self._offered[f.key] = capture
                        out.append((f.mtime_ns, natural_key(f.path), capture))
            changed |= self._prune(files)
            if changed:
                self._write()
            out.sort(key=lambda item: (item[0], item[1]))
            return [capture for _, _, capture in out]

    def taken(self, capture: ClosedCapture) -> None:
        """Every event of `capture` is acknowledged: never offer it again (unless it grows).
        Written to the state file before returning (RegistryError if that fails)."""
        with self._lock:
            if self._offered.get(capture.key) == capture:
                del self._offered[capture.key]
            old = self._taken.pop(capture.key, None)
            if old is not None and old.fingerprint == capture.fingerprint and old.size > capture.size:
                capture = ClosedCapture(capture.path, capture.key, capture.fingerprint, old.size, capture.identity)
            self._taken[capture.key] = _Taken(capture.key, capture.path, capture.fingerprint, capture.identity,
                                              capture.size, time.time())
            while len(self._taken) > self._max_entries:
                del self._taken[next(iter(self._taken))]
            self.counters.taken += 1
            self._write()

    def release(self, capture: ClosedCapture) -> None:
        """The service could not take `capture` (its sink failed, the file was gone): forget
        that it was offered, so the next poll offers it again if it is still there."""
        with self._lock:
            if self._offered.get(capture.key) == capture:
                del self._offered[capture.key]

    def _scan(self, now: float) -> list[_File]:
        """The regular files matching the pattern (the state file aside), their heads read again
        only when they changed."""
        files: dict[str, _File] = {}
        own = (self.state_path, self.state_path + ".tmp")
        for path in glob.glob(self.pattern):
            if os.path.abspath(path) in own:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone since it was listed
            if not stat.S_ISREG(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
            old = self._files.get(path)
            if old is not None and (old.key, old.size, old.mtime_ns) == (key, st.st_size, st.st_mtime_ns):
                files[path] = old
                continue
            if old is None or old.key != key:
                self.counters.seen += 1
            files[path] = _read(path, key, st, now)
        self._files = files
        return list(files.values())

    def _closed(self, f: _File, now: float, newest: int | None) -> bool:
        moved_on = newest is not None and f.mtime_ns < newest
        if f.compressed and os.path.lexists(_uncompressed_name(f.path)):
            return False  # still being compressed (gzip removes the original once done)
        return moved_on or now - f.since >= self.closed_after

    def _judge(self, f: _File) -> tuple[ClosedCapture | None, bool]:
        """The capture to offer for a closed file (None: taken already, or offered and not yet
        taken), and whether it was recorded as a copy of one taken. A capture keeps the
        fingerprint and identity it was first offered with while it grows."""
        offered = self._offered.get(f.key)
        if offered is not None and _matches(offered.fingerprint, f.head):
            return None, False  # offered, not yet taken: offered again once taken if it grew
        entry = self._taken.get(f.key)
        if entry is not None and _matches(entry.fingerprint, f.head):
            if f.size <= entry.size:
                return None, False
            capture = ClosedCapture(f.path, f.key, entry.fingerprint, f.size, entry.identity)
        else:
            fingerprint = _digest(f.head)
            if len(f.head) >= HEAD:
                identity = blake2b(f.head, digest_size=16).digest()
            else:
                identity = blake2b(b"%d:%d:" % f.key + f.head, digest_size=16).digest()
            capture = ClosedCapture(f.path, f.key, fingerprint, f.size, identity)
            if f.compressed:
                original = _uncompressed_name(f.path)
                if any(c.path == original and c.fingerprint == fingerprint for c in self._offered.values()):
                    return None, False  # wait for the original's fate before reading this copy
                if self._is_copy(f, original, fingerprint):
                    self._taken.pop(f.key, None)
                    self._taken[f.key] = _Taken(f.key, f.path, fingerprint, identity, f.size, time.time())
                    self.counters.copies += 1
                    return None, True
        return capture, False

    def _is_copy(self, f: _File, original: str, fingerprint: str) -> bool:
        """Whether a gzip file is the compressed copy of a capture taken whole: same first bytes,
        and gzip's trailer says it holds as many bytes as were taken."""
        if not f.path.endswith(".gz"):
            return False
        for entry in self._taken.values():
            if entry.path == original and entry.fingerprint == fingerprint:
                try:
                    with open(f.path, "rb") as gz:
                        gz.seek(-4, os.SEEK_END)
                        isize = int.from_bytes(gz.read(4), "little")
                except OSError:
                    return False
                return isize == entry.size % (1 << 32)
        return False

    def _skip(self, f: _File) -> None:
        if f.key in self._skipped:
            return
        reason = f.reason or "its compressed data ends before its first 512 bytes"
        self._skipped[f.key] = reason
        self.counters.skipped += 1
        self.counters.reasons[f.path] = reason

    def _prune(self, files: list[_File]) -> bool:
        """Forget what is gone. A state entry goes only when its file is surely gone (not in the
        scan, and its path no longer names it), so that a failed listing forgets nothing."""
        keys = {f.key for f in files}
        paths = {f.path for f in files}
        self._skipped = {k: v for k, v in self._skipped.items() if k in keys}
        self.counters.reasons = {p: r for p, r in self.counters.reasons.items() if p in paths}
        gone = [k for k, entry in self._taken.items() if k not in keys and not _still_there(entry)]
        for key in gone:
            del self._taken[key]
        return bool(gone)

    def _load(self) -> dict[tuple[int, int], _Taken]:
        try:
            with open(self.state_path, "rb") as f:
                document = json.loads(f.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read the capture state {self.state_path}: {exc}") from exc
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise RegistryError(f"{self.state_path} is not a version {FORMAT_VERSION} kamlog capture state")
        try:
            entries = sorted((_decode(item) for item in document["entries"]), key=lambda e: e.at)
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"the capture state {self.state_path} has an invalid entry: {exc}") from exc
        return {entry.key: entry for entry in entries}

    def _write(self) -> None:
        document = {"version": FORMAT_VERSION, "entries": [_encode(e) for e in self._taken.values()]}
        try:
            write_atomically(self.state_path, json.dumps(document, indent=1).encode())
        except OSError as exc:
            raise RegistryError(f"cannot write the capture state {self.state_path}: {exc.strerror}") from exc


def capture_reader(capture: ClosedCapture, identities: Identities | None = None) -> CaptureReader:
    """A CaptureReader of one closed capture (its `records()` are the SIP messages and HEP log
    records; `notes()` what was skipped, a last record cut short included), after checking that
    the file still holds this capture: CaptureGone if not. The payloads' `file` is
    `capture.path`; `identities` (the store's) is told that this path now has this capture's
    identity, so that a name the ring reuses does not give its events the ids of the previous
    capture's. The file is opened when the records are first asked for."""
    try:
        st = os.stat(capture.path)
        head = _head(capture.path)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, SourceError) as exc:
        raise CaptureGone(f"{capture.path} cannot be read any more: {exc}") from None
    if (st.st_dev, st.st_ino) != capture.key or not _matches(capture.fingerprint, head):
        raise CaptureGone(f"{capture.path} no longer holds the capture taken as {capture.fingerprint}")
    if identities is not None:
        identities.set(capture.path, capture.identity)
    return CaptureReader([glob.escape(capture.path)])


def _read(path: str, key: tuple[int, int], st: os.stat_result, now: float) -> _File:
    """A file just seen or changed: its first bytes (decompressed) and what they make it. A file
    named as compressed is taken for one even while still empty (gzip has just created it)."""
    f = _File(path, key, st.st_size, st.st_mtime_ns, now, path.endswith(_SUFFIXES), b"", "pending")
    try:
        with open(path, "rb") as raw:
            head = raw.read(HEAD)
        if any(head.startswith(magic) for magic in COMPRESSED):
            f.compressed = True
            head = _head(path)
    except EOFError:
        f.kind = "cut"  # a compressed file still being written, or cut short
        return f
    except (OSError, zlib.error, lzma.LZMAError, SourceError) as exc:
        f.kind, f.reason = "other", f"it cannot be read ({exc})"
        return f
    f.head = head
    if head[:4] in CAPTURE_MAGICS:
        f.kind = "capture" if len(head) >= _MIN_HEADER else "pending"
    elif len(head) < 4 and any(magic.startswith(head) for magic in CAPTURE_MAGICS):
        f.kind = "pending"  # empty, or its header not all written yet
    else:
        f.kind, f.reason = "other", f"it is not a pcap or pcapng capture (it starts with {head[:8].hex(' ')})"
    return f


def _head(path: str) -> bytes:
    """The first HEAD bytes, decompressed, read as `Identities` reads them."""
    with open_decompressed(path) as f:
        return f.read(HEAD)


def _digest(head: bytes) -> str:
    return f"{len(head)}:{blake2b(head, digest_size=16).hexdigest()}"


def _matches(fingerprint: str, head: bytes) -> bool:
    """Whether a file whose first bytes are `head` still starts as the fingerprinted one did."""
    n = int(fingerprint.partition(":")[0])
    return len(head) >= n and _digest(head[:n]) == fingerprint


def _uncompressed_name(path: str) -> str:
    for suffix in _SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _still_there(entry: _Taken) -> bool:
    try:
        st = os.stat(entry.path)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep it
    return (st.st_dev, st.st_ino) == entry.key


def _encode(entry: _Taken) -> dict[str, Any]:
    return {"device": entry.key[0], "inode": entry.key[1], "path": entry.path, "fingerprint": entry.fingerprint,
            "identity": entry.identity.hex(), "size": entry.size, "taken": entry.at}


def _decode(item: dict[str, Any]) -> _Taken:
    fingerprint = str(item["fingerprint"])
    n, _, digest = fingerprint.partition(":")
    if not (n.isdigit() and 0 <= int(n) <= HEAD and len(digest) == 32):
        raise ValueError(f"fingerprint {fingerprint!r}")
    identity = bytes.fromhex(str(item["identity"]))
    return _Taken((int(item["device"]), int(item["inode"])), str(item["path"]), fingerprint, identity,
                  int(item["size"]), float(item["taken"]))
