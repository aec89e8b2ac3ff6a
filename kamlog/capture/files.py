"""Capture files as one stream of frames: format detection, decompression, merging by time.

:func:`open_capture` reads one file, whatever its name: classic pcap (either byte order, µs or
ns), pcapng, and either of those compressed with gzip (what ``tcpdump -z gzip`` leaves), bzip2
or xz, all told apart by their first bytes, never by the file name.

:func:`read_captures` reads several files as one capture in time order. tcpdump's rotated sets
need nothing more: ``-G`` (``cap-%H%M%S.pcap``) and ``-C`` (``cap.pcap``, ``cap.pcap1``,
``cap.pcap2``, ...) files are merged by their frames' times, so their names and the order they
are given in do not matter. :func:`expand_capture_paths` turns command-line arguments (files,
globs, directories) into the list of files.

Every problem is a :class:`~kamlog.errors.CaptureError` whose message is a sentence naming the
file. What is not worth stopping for (a last record cut short, trailing garbage, an empty file)
is counted in :class:`CaptureStats` with a warning.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import heapq
import lzma
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

from ..errors import CaptureError
from .packets import Frame, Payload
from .pcap import CHUNK, PCAP_MAGICS, ByteSource, CaptureStats, pcap_frames
from .pcapng import pcapng_frames

__all__ = ["CaptureError", "CaptureStats", "expand_capture_paths", "open_capture", "open_capture_decoding",
           "read_captures", "read_captures_decoding"]

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: Compressions read here, by their first bytes.
#: What compressed files start with, and their kind (log files are told apart the same way).
COMPRESSED: dict[bytes, str] = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
#: What some files that are not readable captures start with, and what to tell the user.
_KNOWN_OTHERS: dict[bytes, str] = {
    b"\x28\xb5\x2f\xfd": "it is zstd-compressed: decompress it first (zstd -d)",
    b"\x04\x22\x4d\x18": "it is lz4-compressed: decompress it first (lz4 -d)",
    b"\x34\xcd\xb2\xa1": "it is a modified (Kuznetzov) pcap: convert it with editcap -F pcap",
    b"\xa1\xb2\xcd\x34": "it is a modified (Kuznetzov) pcap: convert it with editcap -F pcap",
    b"snoop\x00\x00\x00": "it is a snoop capture: convert it with editcap -F pcap",
    b"PK\x03\x04": "it is a zip archive: extract it first",
}
#: How many bytes the first-frame probe of :func:`read_captures` reads per file.
_PROBE_CHUNK = 1 << 16


class _Decompressed:
    """A compressed file read as its decompressed bytes. A stream cut short (a compressing
    rotation still running, a copy interrupted) ends the data with a warning instead of an
    error, and so does corrupt data after some output."""

    def __init__(self, raw: ByteSource, kind: str, name: str, stats: CaptureStats) -> None:
        self._raw = raw
        self.kind = kind
        self._name = name
        self._stats = stats
        self._out = 0
        self._done = False
        fileobj: Any = raw
        if kind == "gzip":
            self._z: gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile = gzip.GzipFile(fileobj=fileobj, mode="rb")
        elif kind == "bzip2":
            self._z = bz2.BZ2File(fileobj, mode="rb")
        else:
            self._z = lzma.LZMAFile(fileobj, mode="rb")

    def read(self, n: int, /) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n and not self._done:
            try:
                data = self._z.read1(n - got)
            except EOFError:
                self._stop(f"its {self.kind} data is cut short after {self._out + got} bytes")
                break
            except (OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
                if self._out + got == 0:
                    raise CaptureError(f"{self._name}: its {self.kind} data is corrupt ({exc})") from None
                self._stop(f"its {self.kind} data is corrupt after {self._out + got} bytes ({exc})")
                break
            if not data:
                self._done = True
                break
            parts.append(data)
            got += len(data)
        self._out += got
        return b"".join(parts)

    def _stop(self, what: str) -> None:
        self._done = True
        self._stats.skipped_blocks += 1
        self._stats.warnings.append(f"{self._name}: {what}: read up to there")

    def close(self) -> None:
        try:
            self._z.close()
        finally:
            self._raw.close()


def _describe_start(head: bytes) -> str:
    for magic, hint in _KNOWN_OTHERS.items():
        if head.startswith(magic):
            return hint
    start = head[:16]
    text = start.decode("ascii", "replace")
    if start and all(32 <= b < 127 or b in (9, 10, 13) for b in start):
        return f"starts with {text!r}"
    return "starts with " + start[:8].hex(" ")


def open_capture(path: str, stats: CaptureStats | None = None, *, chunk: int = CHUNK) -> Iterator[Frame]:
    """The frames of one capture file, in file order, numbered from 1 as tshark numbers them.
    See :func:`_open`."""
    return cast(Iterator[Frame], _open(path, stats, chunk, decode_udp=False))


def open_capture_decoding(path: str, stats: CaptureStats | None = None) -> Iterator[Frame | Payload]:
    """:func:`open_capture`, except that a classic pcap's frames that hold an unfragmented IPv4
    UDP datagram come as its Payload, decoded in the reader's loop (see :func:`pcap_frames`):
    for :meth:`PacketDecoder.payloads`, which passes them on."""
    return _open(path, stats, CHUNK, decode_udp=True)


def _open(path: str, stats: CaptureStats | None, chunk: int, decode_udp: bool) -> Iterator[Frame | Payload]:
    """The frames of one capture file, in file order, numbered from 1 as tshark numbers them.

    The file is opened and its header checked now: :class:`CaptureError` if it does not exist,
    cannot be read, is not a capture, or its header is cut short. Damage further on raises
    :class:`CaptureError` (or is counted, with a warning) while iterating; the frames before it
    have been yielded. An empty file (a capture whose writer has not flushed yet) has no frames
    and a warning. The file is closed when the iterator ends or is closed."""
    if stats is None:
        stats = CaptureStats()
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{path} is a directory, not a capture file") from None
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None
    src: ByteSource = raw
    try:
        head = raw.read(chunk)
        kind = next((k for magic, k in COMPRESSED.items() if head.startswith(magic)), None)
        if kind is not None:
            src = _Decompressed(_Prefixed(head, raw), kind, path, stats)
            head = src.read(chunk)
        what = f"{kind}-compressed " if kind else ""
        if not head:
            src.close()
            stats.files += 1
            stats.warnings.append(f"{path}: the {what}file is empty (a capture not written yet?): no frames")
            return iter(())
        magic = head[:4]
        if magic in PCAP_MAGICS:
            frames = pcap_frames(src, path, stats, head, chunk, decode_udp)
        elif magic == PCAPNG_MAGIC:
            frames = pcapng_frames(src, path, stats, head, chunk)
        elif len(head) < 4 and any(m.startswith(head) for m in (*PCAP_MAGICS, PCAPNG_MAGIC)):
            raise CaptureError(f"{path}: the {what}capture's header is cut short ({len(head)} bytes)")
        else:
            raise CaptureError(
                f"{path} is not a pcap or pcapng capture ({what}data; {_describe_start(head)})"
                if kind else f"{path} is not a pcap or pcapng capture ({_describe_start(head)})"
            )
    except BaseException:
        src.close()
        raw.close()
        raise
    stats.files += 1
    return frames


class _Prefixed:
    """A file whose first bytes were already read (to tell its format), read again from 0."""

    def __init__(self, head: bytes, raw: ByteSource) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._raw.read(-1), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)

    def close(self) -> None:
        self._raw.close()


def read_captures(paths: Sequence[str], stats: CaptureStats | None = None, *,
                  chunk: int = CHUNK) -> Iterator[Frame]:
    """The frames of several capture files merged in time order (stable: frames of equal times
    keep the order of ``paths``, and each file its own order and numbering).

    Every file is opened and its first frame read now, so that a missing file or one that is not
    a capture raises :class:`CaptureError` before any frame. Then files are opened only when the
    merged stream reaches their first frame: a rotated set of hundreds of files holds one or two
    open at a time. The merge assumes each file is in time order, as capture tools write them."""
    if stats is None:
        stats = CaptureStats()
    if len(paths) == 1:
        return open_capture(paths[0], stats, chunk=chunk)
    starts: list[tuple[int, int, str]] = []
    for index, path in enumerate(paths):
        probe = CaptureStats()
        frames = open_capture(path, probe, chunk=_PROBE_CHUNK)
        try:
            first = next(frames, None)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        if first is None:  # no frames: its warnings now, it takes no part in the merge
            stats.files += 1
            stats.skipped_blocks += probe.skipped_blocks
            stats.warnings.extend(probe.warnings)
        else:
            starts.append((first[2], index, path))
    starts.sort()
    return _merge(starts, stats, chunk)


def read_captures_decoding(paths: Sequence[str], stats: CaptureStats | None = None) -> Iterator[Frame | Payload]:
    """:func:`read_captures` for :meth:`PacketDecoder.payloads`: one classic pcap is read with
    its common case decoded in the reader's loop (:func:`open_capture_decoding`); several files
    are merged by time as frames."""
    if len(paths) == 1:
        return open_capture_decoding(paths[0], stats)
    return read_captures(paths, stats)


def _merge(starts: list[tuple[int, int, str]], stats: CaptureStats, chunk: int) -> Iterator[Frame]:
    heap: list[tuple[int, int, Frame, Iterator[Frame]]] = []
    count = len(starts)
    p = 0
    try:
        while True:
            # Open every file whose first frame is due (equal times included, for stability).
            while p < count and (not heap or starts[p][0] <= heap[0][0]):
                _ts, index, path = starts[p]
                p += 1
                frames = open_capture(path, stats, chunk=chunk)
                first = next(frames, None)
                if first is not None:
                    heapq.heappush(heap, (first[2], index, first, frames))
            if not heap:
                return
            if len(heap) == 1:
                # One file open (a rotated set, mostly): no heap work until the next file is due.
                _ts, index, frame, frames = heap[0]
                if p == count:
                    heap.clear()
                    yield frame
                    yield from frames
                    return
                limit = starts[p][0]
                yield frame
                for frame in frames:
                    if frame[2] >= limit:
                        heap[0] = (frame[2], index, frame, frames)
                        break
                    yield frame
                else:
                    heap.clear()
                continue
            _ts, index, frame, frames = heap[0]
            yield frame
            following = next(frames, None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following[2], index, following, frames))
    finally:
        for entry in heap:
            close = getattr(entry[3], "close", None)
            if close is not None:
                close()


_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str) -> list[str | int]:
    """Sort key: ``cap.pcap2`` before ``cap.pcap10``."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(path)]


def expand_capture_paths(args: Sequence[str]) -> list[str]:
    """The capture files named by command-line arguments: files as given, globs
    (``'/var/tmp/cap*.pcap*'``) and directories (their files, not hidden ones, not recursing)
    expanded in natural order (``cap.pcap2`` before ``cap.pcap10``), each file once.

    :class:`CaptureError` for a glob that matches no file or a directory that holds none; a plain
    name is kept as it is (:func:`open_capture` says if it does not exist)."""
    out: list[str] = []
    seen: set[str] = set()
    for arg in args:
        if os.path.isdir(arg):
            names = [os.path.join(arg, n) for n in os.listdir(arg) if not n.startswith(".")]
            matches = sorted((p for p in names if os.path.isfile(p)), key=natural_key)
            if not matches:
                raise CaptureError(f"{arg} is a directory with no files in it")
        elif glob.has_magic(arg):
            matches = sorted((p for p in glob.glob(arg) if os.path.isfile(p)), key=natural_key)
            if not matches:
                raise CaptureError(f"no capture file matches {arg}")
        else:
            matches = [arg]
        for match in matches:
            key = os.path.realpath(match)
            if key not in seen:
                seen.add(key)
                out.append(match)
    return out
