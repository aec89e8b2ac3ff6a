"""Classic pcap files (libpcap's format, what `tcpdump -w` writes): both byte orders, microsecond
(magic 0xa1b2c3d4) and nanosecond (0xa1b23c4d) timestamps.

Also home of what both readers share: the byte source they read from, the counters they keep
(:class:`CaptureStats`) and the limit on one record's size.

Damage, and what the reader does about it:

* a record whose captured length is absurd (more than both the file's snapshot length and
  :data:`MAX_SANE_CAPLEN`, or more than :data:`MAX_CAPLEN`): :class:`CaptureError` naming the file
  and the record's byte offset; the frames before it have been yielded;
* a last record cut short (the file ends inside its header or its data, as a killed tcpdump or a
  capture still being written leaves it): not an error; every complete frame before it is
  yielded, it is counted in :attr:`CaptureStats.skipped_blocks` and a warning says so.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import CaptureError
from .decode import UdpLayout, fast_udp_layout, udp_names
from .packets import Frame, Payload

#: Bytes read from the file at a time; records are unpacked from these blocks in memory.
CHUNK = 1 << 20
#: libpcap's largest snapshot length (MAXIMUM_SNAPLEN); a record may claim more only when the
#: file's header announces a larger snapshot length.
MAX_SANE_CAPLEN = 262144
#: No record is believed above this (D-Bus captures, the largest libpcap knows, stay below).
MAX_CAPLEN = 1 << 27

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
#: The first four bytes of a pcap file, each meaning: (byte order, fraction digits).
PCAP_MAGICS: dict[bytes, tuple[str, int]] = {
    struct.pack("<I", MAGIC_US): ("<", 6),
    struct.pack(">I", MAGIC_US): (">", 6),
    struct.pack("<I", MAGIC_NS): ("<", 9),
    struct.pack(">I", MAGIC_NS): (">", 9),
}


class ByteSource(Protocol):
    """What a reader reads from: a binary file, or a decompressing stream over one.

    ``read(n)`` returns fewer than ``n`` bytes only at the end of the data."""

    def read(self, n: int, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class CaptureStats:
    """What reading the capture files met. The readers add their counts when a buffer is refilled
    and when a file ends (or reading stops), so the totals are exact once reading is over."""

    files: int = 0
    frames: int = 0
    bytes: int = 0  # captured bytes of those frames
    truncated: int = 0  # frames the snapshot length cut (captured < length on the wire)
    # pcapng blocks that carry no packet (name resolution, statistics, custom, unknown blocks),
    # plus cut-off last records and trailing garbage (each of those also has a warning).
    skipped_blocks: int = 0
    warnings: list[str] = field(default_factory=list)


def pcap_frames(src: ByteSource, name: str, stats: CaptureStats, buf: bytes,
                chunk: int = CHUNK, decode_udp: bool = False) -> Iterator[Frame | Payload]:
    """The frames of a pcap file whose first bytes, ``buf``, have been read from ``src``.

    The file header is checked now (:class:`CaptureError` if it is cut short or of an unknown
    version); the records are read as the iterator is consumed. ``src`` is closed when the
    iterator ends or is closed. With ``decode_udp``, a frame that holds an unfragmented IPv4
    UDP datagram (on a link type the decoder's inline path knows) comes out as that datagram's
    Payload, decoded in this loop exactly as :meth:`PacketDecoder.payloads` would: no Frame is
    built for it (a third of the cost of reading such a capture)."""
    try:
        if len(buf) < 24:
            buf += src.read(24 - len(buf))
        if len(buf) < 24:
            raise CaptureError(
                f"{name}: the pcap file header is cut short ({len(buf)} of its 24 bytes)"
            )
        order, digits = PCAP_MAGICS[buf[:4]]
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", buf, 4)
        if major != 2:
            raise CaptureError(f"{name}: pcap version {major}.{minor} is not supported (only 2.x)")
    except BaseException:
        src.close()
        raise
    # The upper bits of the link type field hold the FCS length (LT_FCS_*): not the link type.
    linktype = network & 0xFFFF
    layout = fast_udp_layout(linktype) if decode_udp else None
    return _records(src, name, stats, buf, chunk, order, digits, snaplen, linktype, layout)


def _records(src: ByteSource, name: str, stats: CaptureStats, buf: bytes, chunk: int,
             order: str, digits: int, snaplen: int, linktype: int,
             layout: UdpLayout | None) -> Iterator[Frame | Payload]:
    record = struct.Struct(order + "IIII").unpack_from
    unpack, at, ip = layout if layout is not None else (None, 0, 0)
    payload_cls = Payload
    new = tuple.__new__
    frame_cls = Frame
    scale = 1000 if digits == 6 else 1
    limit = max(snaplen, MAX_SANE_CAPLEN) if snaplen <= MAX_CAPLEN else MAX_CAPLEN
    base = 0  # file offset of buf[0]
    pos = 24
    number = 0
    counted = 0  # frames already added to stats
    truncated = 0
    end_of_data = False
    start = first = 0  # where the records not yet in stats.bytes start, and their first number
    try:
        while True:
            have = len(buf)
            start, first = pos, number
            # The hot loop: every whole record in the buffer.
            while pos + 16 <= have:
                sec, frac, caplen, wire = record(buf, pos)
                end = pos + 16 + caplen
                if end > have:
                    break
                if not wire and not sec and not caplen:
                    # Zeros where a record should be: a crash leaves a preallocated tail so.
                    zeros, extra = zero_tail(src, buf, pos)
                    if zeros >= 0:
                        stats.skipped_blocks += 1
                        stats.warnings.append(
                            f"{name}: {zeros} zero bytes after the last record (at byte "
                            f"{base + pos}): ignored"
                        )
                        return
                    if extra:  # not only zeros: read on (as a strange empty record)
                        buf += extra
                        have = len(buf)
                        end_of_data = False
                number += 1
                if caplen < wire:
                    truncated += 1
                if unpack is not None and caplen >= ip + 28:
                    # The decoder's inline path (PacketDecoder.payloads), on the bytes in place.
                    etype, vihl, total, flags, proto, pair, sport, dport, ulen = unpack(buf, pos + 16 + at)
                    if (etype == 0x0800 and vihl == 0x45 and proto == 17 and not flags & 0x3FFF
                            and 28 <= total <= caplen - ip and 8 <= ulen <= total - 20):
                        names = udp_names(pair)
                        udp_at = pos + 16 + ip + 28
                        payload = new(payload_cls, (buf[udp_at:udp_at - 8 + ulen],
                                                    sec * 1_000_000_000 + frac * scale, digits, names[0], sport,
                                                    names[1], dport, "udp", name, number, "", ()))
                        pos = end
                        yield payload
                        continue
                frame = new(frame_cls, (name, number, sec * 1_000_000_000 + frac * scale, digits,
                                        linktype, buf[pos + 16:end], wire))
                pos = end
                yield frame
            # Records are contiguous: their captured bytes are what they span less their headers.
            stats.bytes += pos - start - 16 * (number - first)
            start, first = pos, number
            stats.frames += number - counted
            stats.truncated += truncated
            counted = number
            truncated = 0
            need = 16
            if pos + 16 <= have:
                caplen = record(buf, pos)[2]
                if caplen > limit:
                    raise CaptureError(
                        f"{name}: the record at byte {base + pos} (frame {number + 1}) claims "
                        f"{caplen} captured bytes, more than the file's snapshot length ({snaplen}): "
                        "the file is corrupt"
                    )
                need = 16 + caplen
            if end_of_data:
                if pos < have:
                    _cut_record(stats, name, number + 1, base + pos, have - pos,
                                need if need > 16 else None)
                break
            buf, end_of_data = refill(src, buf, pos, chunk, need)
            base += pos
            pos = start = 0
    finally:
        stats.bytes += pos - start - 16 * (number - first)
        stats.frames += number - counted
        stats.truncated += truncated
        src.close()


def zero_tail(src: ByteSource, buf: bytes, pos: int) -> tuple[int, bytes]:
    """``(count, b"")`` if every byte from ``buf[pos]`` to the end of ``src`` is zero; else
    ``(-1, extra)``, ``extra`` being what was read from ``src`` to find out (to append to
    ``buf``)."""
    count = len(buf) - pos
    if buf.count(0, pos) != count:
        return -1, b""
    zeros = 0  # read from src, all zero, not kept
    while True:
        more = src.read(CHUNK)
        if not more:
            return count + zeros, b""
        if more.count(0) != len(more):
            return -1, bytes(zeros) + more
        zeros += len(more)


def refill(src: ByteSource, buf: bytes, pos: int, chunk: int, need: int) -> tuple[bytes, bool]:
    """The unread tail of `buf` (from `pos`) with the next block appended, at least `need` bytes
    if the file has them (a record or block bigger than a block); and whether the data ended."""
    want = max(chunk, need - (len(buf) - pos))
    more = src.read(want)
    return buf[pos:] + more, len(more) < want


def _cut_record(stats: CaptureStats, name: str, number: int, offset: int, have: int,
                need: int | None) -> None:
    stats.skipped_blocks += 1
    if need is None:
        what = f"its 16-byte record header is cut short ({have} bytes)"
    else:
        what = f"the file ends after {have} of its {need} bytes"
    stats.warnings.append(
        f"{name}: the last record (frame {number}, at byte {offset}) is incomplete, {what}: "
        "skipped (a capture still being written, or tcpdump stopped abruptly)"
    )
