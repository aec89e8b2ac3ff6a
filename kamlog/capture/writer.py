"""Writes frames back out as a capture Wireshark opens: classic pcap when they share one link
type, pcapng (one interface per link type) when they do not."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import BinaryIO

from .packets import Frame

_PCAP_NS_MAGIC = 0xA1B23C4D
_SNAPLEN = 262144


def write_pcap(out: BinaryIO, frames: Iterable[Frame]) -> int:
    """Write `frames` (in the order given) to `out`; returns how many. The timestamps keep
    nanoseconds (the nanosecond pcap magic, or if_tsresol 9 in pcapng)."""
    frames = list(frames)
    linktypes = sorted({f.linktype for f in frames})
    if len(linktypes) <= 1:
        out.write(struct.pack("<IHHiIII", _PCAP_NS_MAGIC, 2, 4, 0, 0, _SNAPLEN, linktypes[0] if linktypes else 1))
        for f in frames:
            seconds, ns = divmod(f.ts_ns, 1_000_000_000)
            out.write(struct.pack("<IIII", seconds, ns, len(f.data), max(f.wire_len, len(f.data))))
            out.write(f.data)
        return len(frames)
    out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    interface = {}
    for number, linktype in enumerate(linktypes):
        interface[linktype] = number
        # if_tsresol (option 9) = 9: nanoseconds; end of options.
        options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
        out.write(_block(0x00000001, struct.pack("<HHI", linktype, 0, _SNAPLEN) + options))
    for f in frames:
        body = struct.pack("<IIIII", interface[f.linktype], f.ts_ns >> 32, f.ts_ns & 0xFFFFFFFF,
                           len(f.data), max(f.wire_len, len(f.data)))
        out.write(_block(0x00000006, body + f.data + b"\0" * (-len(f.data) % 4)))
    return len(frames)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)
