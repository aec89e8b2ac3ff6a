"""pcapng files (what dumpcap, tshark and Wireshark write).

Read: section header blocks (either byte order; a file may hold several sections, each with its
own byte order and its own interfaces), interface description blocks (link type, snapshot
length, the ``if_tsresol`` and ``if_tsoffset`` options), enhanced, simple and obsolete packet
blocks. Every other block (name resolution, interface statistics, decryption secrets, custom,
unknown types) is skipped by its length and counted in :attr:`CaptureStats.skipped_blocks`;
the ones Wireshark shows as records (:data:`NUMBERED_RECORDS`) take a frame number all the same,
so that frame numbers are tshark's.
Each frame carries the link type and timestamp resolution of its own interface, so a file that
merges an Ethernet and a Linux cooked interface decodes both.

A simple packet block has no timestamp: its frame takes the time of the packet before it in the
file (0 if none), which keeps the file in time order for merging.

Damage, and what the reader does about it:

* :class:`CaptureError` naming the file and the block's byte offset, after yielding every frame
  before it, when a block's length is below 12 or not a multiple of 4, when a block's trailing
  length differs from its leading one, when a block claims more bytes than :data:`MAX_BLOCK`
  (more than any capture block) and they are not all in the file, when a packet block's captured length does not fit in the
  block, when a packet names an interface its section does not describe, for an unknown byte-order
  magic or version in a section header, and when the first section header itself is cut short;
* a counted skip with a warning (not an error), after every complete frame: the file ends inside
  a block (a capture still being written, or a writer killed mid-block) whose length is at most
  :data:`MAX_BLOCK` (a block longer than the rest of the file is taken for a cut one, not a lie,
  when it is the last one there is), fewer than 12 bytes after the last block, or only zero bytes after the last block
  (what a crash leaves in a preallocated file).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from ..errors import CaptureError
from .packets import Frame
from .pcap import CHUNK, ByteSource, CaptureStats, refill, zero_tail

SHB = 0x0A0D0D0A
IDB = 1
OPB = 2
SPB = 3
EPB = 6
BOM_LITTLE = b"\x4d\x3c\x2b\x1a"
BOM_BIG = b"\x1a\x2b\x3c\x4d"
#: A block whose file ends before it is believed cut short only up to this length; above it its
#: length field is taken for a lie.
MAX_BLOCK = (1 << 27) + 4096

#: Blocks that are records but not packets: custom blocks (copyable or not), systemd journal
#: export entries, sysdig events. Not read, but tshark (4.0) gives each a frame number, and so
#: does kamlog, so that frame numbers stay the ones Wireshark shows.
NUMBERED_RECORDS = frozenset({0x00000BAD, 0x40000BAD, 0x00000009, 0x00000204, 0x00000216, 0x00000221})
#: The most option bytes a packet block is believed to carry (comments, flags, hashes).
MAX_OPTIONS = 1 << 16

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# An interface: (link type, snapshot length (0: none), timestamp multiplier, divisor, offset in
# ns, fraction digits). Nanoseconds = raw * multiplier // divisor + offset.
_Interface = tuple[int, int, int, int, int, int]


def pcapng_frames(src: ByteSource, name: str, stats: CaptureStats, buf: bytes,
                  chunk: int = CHUNK) -> Iterator[Frame]:
    """The frames of a pcapng file whose first bytes, ``buf``, have been read from ``src``.

    The first section header is checked now (:class:`CaptureError` if it is cut short, has no
    valid byte-order magic or an unknown version); the blocks are read as the iterator is
    consumed. ``src`` is closed when the iterator ends or is closed."""
    try:
        if len(buf) < 28:
            buf += src.read(max(chunk, 28))
        if len(buf) < 28:
            raise CaptureError(f"{name}: the pcapng section header is cut short ({len(buf)} bytes)")
        order = _byte_order(buf, 0, name, 0)
        blen = struct.unpack_from(order + "I", buf, 4)[0]
        major, minor = struct.unpack_from(order + "HH", buf, 12)
        if major != 1:
            raise CaptureError(f"{name}: pcapng version {major}.{minor} is not supported (only 1.x)")
        if blen < 28 or blen & 3:
            raise CaptureError(
                f"{name}: the pcapng section header at byte 0 has an impossible length ({blen})"
            )
        if len(buf) < blen:
            buf += src.read(blen - len(buf))
            if len(buf) < blen:
                raise CaptureError(
                    f"{name}: the pcapng section header is cut short ({len(buf)} of its {blen} bytes)"
                )
    except BaseException:
        src.close()
        raise
    return _blocks(src, name, stats, buf, chunk)


def _byte_order(buf: bytes, pos: int, name: str, offset: int) -> str:
    bom = buf[pos + 8:pos + 12]
    if bom == BOM_LITTLE:
        return "<"
    if bom == BOM_BIG:
        return ">"
    raise CaptureError(
        f"{name}: the pcapng section header at byte {offset} has no valid byte-order magic "
        f"({bom.hex(' ')}): the file is corrupt"
    )


def _resolution(tsresol: int) -> tuple[int, int, int]:
    """(multiplier, divisor, fraction digits) of an ``if_tsresol`` value: a negative power of
    10 or, with the top bit set, of 2."""
    units = 1 << (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol
    mul, div = 1_000_000_000, units
    while mul % 10 == 0 and div % 10 == 0:
        mul //= 10
        div //= 10
    while mul % 2 == 0 and div % 2 == 0:
        mul //= 2
        div //= 2
    # As Wireshark: the number of decimal digits the unit can resolve, at most nanoseconds.
    return mul, div, min(9, len(str(units)) - 1)


def _interface(buf: bytes, pos: int, end: int, order: str) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
    tsresol = 6
    offset_s = 0
    p = pos + 16
    stop = end - 4
    option = struct.Struct(order + "HH").unpack_from
    while p + 4 <= stop:
        code, olen = option(buf, p)
        p += 4
        if code == OPT_ENDOFOPT or p + olen > stop:
            break  # a malformed option list ends the options, not the file
        if code == OPT_IF_TSRESOL and olen >= 1:
            tsresol = buf[p]
        elif code == OPT_IF_TSOFFSET and olen >= 8:
            offset_s = struct.unpack_from(order + "q", buf, p)[0]
        p += (olen + 3) & ~3
    mul, div, digits = _resolution(tsresol)
    return (linktype, snaplen, mul, div, offset_s * 1_000_000_000, digits)


_Unpack = Callable[[bytes, int], tuple[Any, ...]]


def _section_structs(order: str) -> tuple[_Unpack, _Unpack, _Unpack, _Unpack, _Unpack]:
    """Unpackers of a section's byte order: block head, trailing length, enhanced packet block
    fields, obsolete packet block fields, one 32-bit word."""
    word = struct.Struct(order + "I").unpack_from
    return (struct.Struct(order + "II").unpack_from, word, struct.Struct(order + "IIIII").unpack_from,
            struct.Struct(order + "HHIIII").unpack_from, word)


def _check_cut_block(buf: bytes, pos: int, have: int, blen: int, name: str, offset: int,
                     head: _Unpack, epb: _Unpack, opb: _Unpack) -> None:
    """The file ends inside the block at ``pos``: cut short, or is its length a lie? A packet
    block's length must fit its captured length (with room for options); if it does not, the
    length lies (CaptureError). Other blocks cannot tell and are taken for cut."""
    btype = head(buf, pos)[0]
    if btype not in (EPB, OPB) or have - pos < 28:
        return
    caplen = (epb if btype == EPB else opb)(buf, pos + 8)[3 if btype == EPB else 4]
    if not 32 + caplen <= blen <= 32 + caplen + 3 + MAX_OPTIONS:
        raise CaptureError(
            f"{name}: the packet block at byte {offset} claims {blen} bytes but holds a packet of "
            f"{caplen}, and the file ends first: the file is corrupt"
        )


def _bad_trailer(name: str, offset: int, blen: int, trail: int) -> NoReturn:
    raise CaptureError(
        f"{name}: the block at byte {offset} has a trailing length ({trail}) that differs from "
        f"its leading length ({blen}): the file is corrupt"
    )


def _too_short(name: str, offset: int, what: str, blen: int) -> NoReturn:
    raise CaptureError(f"{name}: the {what} block at byte {offset} is too short ({blen} bytes): "
                       "the file is corrupt")


def _caplen_lies(name: str, offset: int, caplen: int, room: int) -> NoReturn:
    raise CaptureError(
        f"{name}: the packet block at byte {offset} claims {caplen} captured bytes but has room "
        f"for {room}: the file is corrupt"
    )


def _no_interface(name: str, offset: int, iface: int, count: int) -> NoReturn:
    raise CaptureError(
        f"{name}: the packet block at byte {offset} names interface {iface}, but its section "
        f"describes {count} interface{'s' if count != 1 else ''}: the file is corrupt"
    )


def _blocks(src: ByteSource, name: str, stats: CaptureStats, buf: bytes,
            chunk: int) -> Iterator[Frame]:
    new = tuple.__new__
    frame_cls = Frame
    base = 0  # file offset of buf[0]
    pos = 0
    number = 0
    counted = 0
    size = 0
    truncated = 0
    skipped = 0
    last_ts = 0
    end_of_data = False
    ifaces: list[_Interface] = []
    # Set by the first block, a section header (checked by pcapng_frames).
    order = "<"
    head, trailer, epb, opb, u32 = _section_structs(order)
    seven = struct.Struct(order + "7I").unpack_from
    try:
        while True:
            have = len(buf)
            need = 12
            while pos + 12 <= have:
                # The hot loop: consecutive well-formed enhanced packet blocks, each unpacked in
                # one call; anything else (or anything wrong) goes the general way below.
                while pos + 32 <= have:
                    btype, blen, iface, hi, lo, caplen, wire = seven(buf, pos)
                    end = pos + blen
                    if (btype != EPB or end > have or caplen > blen - 32 or blen & 3
                            or iface >= len(ifaces) or trailer(buf, end - 4)[0] != blen):
                        break
                    linktype, _snaplen, mul, div, offset_ns, digits = ifaces[iface]
                    last_ts = ((hi << 32) | lo) * mul // div + offset_ns
                    number += 1
                    size += caplen
                    if caplen < wire:
                        truncated += 1
                    frame = new(frame_cls, (name, number, last_ts, digits, linktype,
                                            buf[pos + 28:pos + 28 + caplen], wire))
                    pos = end
                    yield frame
                if pos + 12 > have:
                    break
                btype, blen = head(buf, pos)
                if btype == SHB:  # a new section, maybe in the other byte order
                    order = _byte_order(buf, pos, name, base + pos)
                    head, trailer, epb, opb, u32 = _section_structs(order)
                    seven = struct.Struct(order + "7I").unpack_from
                    btype, blen = head(buf, pos)
                if blen < 12 or blen & 3:
                    if btype == 0 and blen == 0 and zero_tail(src, buf, pos)[0] >= 0:
                        end_of_data = True
                        have = pos  # the rest is zeros: the end of the data
                        stats.skipped_blocks += 1
                        stats.warnings.append(
                            f"{name}: zero bytes after the last block (at byte {base + pos}): ignored"
                        )
                        break
                    raise CaptureError(
                        f"{name}: the block at byte {base + pos} has an impossible length ({blen}): "
                        "the file is corrupt"
                    )
                end = pos + blen
                if end > have:
                    if blen > MAX_BLOCK:  # checked before reading that much
                        raise CaptureError(
                            f"{name}: the block at byte {base + pos} claims {blen} bytes, more than "
                            "any capture block: the file is corrupt"
                        )
                    need = blen
                    break
                if trailer(buf, end - 4)[0] != blen:
                    _bad_trailer(name, base + pos, blen, trailer(buf, end - 4)[0])
                if btype == EPB or btype == OPB:
                    if blen < 32:
                        _too_short(name, base + pos, "enhanced packet" if btype == EPB else "packet", blen)
                    if btype == EPB:
                        iface, hi, lo, caplen, wire = epb(buf, pos + 8)
                    else:  # the obsolete packet block: a 16-bit interface and a drop count first
                        iface, _drops, hi, lo, caplen, wire = opb(buf, pos + 8)
                    if caplen > blen - 32:
                        _caplen_lies(name, base + pos, caplen, blen - 32)
                    if iface >= len(ifaces):
                        _no_interface(name, base + pos, iface, len(ifaces))
                    linktype, _snaplen, mul, div, offset_ns, digits = ifaces[iface]
                    last_ts = ((hi << 32) | lo) * mul // div + offset_ns
                    number += 1
                    size += caplen
                    if caplen < wire:
                        truncated += 1
                    frame = new(frame_cls, (name, number, last_ts, digits, linktype,
                                            buf[pos + 28:pos + 28 + caplen], wire))
                    pos = end
                    yield frame
                    continue
                if btype == SHB:
                    if blen < 28:
                        _too_short(name, base + pos, "section header", blen)
                    major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
                    if major != 1:
                        raise CaptureError(
                            f"{name}: the section at byte {base + pos} is pcapng version "
                            f"{major}.{minor}, which is not supported (only 1.x)"
                        )
                    ifaces = []
                elif btype == IDB:
                    if blen < 20:
                        _too_short(name, base + pos, "interface description", blen)
                    ifaces.append(_interface(buf, pos, end, order))
                elif btype == SPB:
                    if blen < 16:
                        _too_short(name, base + pos, "simple packet", blen)
                    if not ifaces:
                        _no_interface(name, base + pos, 0, 0)
                    linktype, snaplen, _mul, _div, _offset, digits = ifaces[0]
                    wire = u32(buf, pos + 8)[0]
                    caplen = min(wire, blen - 16, snaplen) if snaplen else min(wire, blen - 16)
                    number += 1
                    size += caplen
                    if caplen < wire:
                        truncated += 1
                    frame = new(frame_cls, (name, number, last_ts, digits, linktype,
                                            buf[pos + 12:pos + 12 + caplen], wire))
                    pos = end
                    yield frame
                    continue
                else:
                    skipped += 1
                    if btype in NUMBERED_RECORDS:
                        number += 1  # not a packet, but tshark numbers it as a frame
                        counted += 1
                pos = end
            stats.frames += number - counted
            counted = number
            stats.bytes += size
            stats.truncated += truncated
            stats.skipped_blocks += skipped
            size = truncated = skipped = 0
            if end_of_data:
                if pos < have:
                    if need > 12:  # a block whose end the file does not reach
                        _check_cut_block(buf, pos, have, need, name, base + pos, head, epb, opb)
                        stats.skipped_blocks += 1
                        stats.warnings.append(
                            f"{name}: the last block (at byte {base + pos}) is incomplete, the file "
                            f"ends after {have - pos} of its {need} bytes: skipped (a capture still "
                            "being written, or its writer stopped abruptly)"
                        )
                    else:
                        rest = buf[pos:have]
                        what = "zero bytes" if not rest.strip(b"\0") else "bytes that are not a block"
                        stats.skipped_blocks += 1
                        stats.warnings.append(
                            f"{name}: {len(rest)} {what} after the last block (at byte "
                            f"{base + pos}): ignored"
                        )
                break
            buf, end_of_data = refill(src, buf, pos, chunk, need)
            base += pos
            pos = 0
    finally:
        stats.frames += number - counted
        stats.bytes += size
        stats.truncated += truncated
        stats.skipped_blocks += skipped
        src.close()
