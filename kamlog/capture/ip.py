"""IP: IPv4 and IPv6 headers, and the reassembly of fragmented datagrams.

Header parsing trusts what was captured over what the header claims: a packet ends at its
length field or at the end of the captured bytes, whichever comes first (``cut`` says which);
checksums are not checked. IPv6 extension headers (hop-by-hop, routing, destination options,
authentication, fragment) are walked to the transport header.

:class:`Reassembler` puts fragmented datagrams (IPv4 and IPv6) back together, keyed by (version,
source, destination, identification, protocol) and independent of the transport header (only
the first fragment has the UDP ports). Fragments may come in any order, duplicated (``tcpdump -i
any`` sees a bridged packet on every interface) or overlapping (the first bytes captured win).
Memory is bounded: a set still incomplete after :attr:`Reassembler.timeout_ns` of capture time,
or the oldest ones when too many sets or bytes are pending, is dropped and reported as
incomplete, never silently: a capture filtered by port (``udp port 5060``) keeps only first
fragments, and the user must be told why those datagrams are missing.
"""

from __future__ import annotations

import socket
import struct
from typing import Final, NamedTuple

#: parse_ipv4/parse_ipv6 results when there is no packet: its header is cut short by the
#: snapshot length, or it is malformed (a lying length, a wrong version).
IP_TRUNCATED: Final = 1
IP_BAD: Final = 2

PROTO_TCP: Final = 6
PROTO_UDP: Final = 17
PROTO_SCTP: Final = 132

_MAX_NAMES: Final = 1 << 16
#: Address text by raw address bytes; cleared when full (a scan of many addresses).
V4_NAMES: dict[bytes, str] = {}
V6_NAMES: dict[bytes, str] = {}

_V4_FIELDS = struct.Struct(">2xHHHxB").unpack_from  # total length, id, flags+offset, protocol
_V6_FIELDS = struct.Struct(">4xHB").unpack_from  # payload length, next header
_V6_FRAGMENT = struct.Struct(">BxHI").unpack_from  # next header, offset+M, identification

# IPv6 extension headers walked to find the transport header.
_HOP_BY_HOP: Final = 0
_ROUTING: Final = 43
_FRAGMENT: Final = 44
_AUTH: Final = 51
_DEST_OPTS: Final = 60
_EXTENSIONS: Final = frozenset({_HOP_BY_HOP, _ROUTING, _FRAGMENT, _AUTH, _DEST_OPTS, 135, 139, 140})


def v4_name(raw: bytes) -> str:
    """Dotted text of a 4-byte IPv4 address (cached)."""
    return V4_NAMES.get(raw) or _remember(V4_NAMES, socket.AF_INET, raw)


def v6_name(raw: bytes) -> str:
    """RFC 5952 text of a 16-byte IPv6 address, as tshark writes it (cached)."""
    return V6_NAMES.get(raw) or _remember(V6_NAMES, socket.AF_INET6, raw)


def _remember(names: dict[bytes, str], family: int, raw: bytes) -> str:
    if len(names) >= _MAX_NAMES:
        names.clear()
    name = names[raw] = socket.inet_ntop(family, raw)
    return name


#: What identifies the fragments of one datagram: (version, source, destination,
#: identification, protocol), addresses as raw bytes.
FragmentKey = tuple[int, bytes, bytes, int, int]


class IpPacket(NamedTuple):
    """One IP packet's header, as offsets into the frame's bytes."""

    version: int  # 4 or 6
    src: str
    dst: str
    proto: int  # the transport protocol (of the whole datagram, for a fragment)
    start: int  # offset of the transport header, or of a fragment's data
    end: int  # offset just past the packet: its length field or the captured bytes, the lesser
    cut: bool  # its length field says more than was captured
    key: FragmentKey | None  # a fragment: the datagram it belongs to; None when not a fragment
    frag_offset: int  # a fragment's offset in its datagram, in bytes
    more: bool  # a fragment with more after it (MF)


def parse_ipv4(data: bytes, off: int) -> IpPacket | int:
    """The IPv4 header at ``data[off]``, or :data:`IP_TRUNCATED` / :data:`IP_BAD`."""
    n = len(data)
    if n < off + 20:
        return IP_TRUNCATED
    first = data[off]
    ihl = (first & 15) * 4
    if first >> 4 != 4 or ihl < 20:
        return IP_BAD
    if n < off + ihl:
        return IP_TRUNCATED
    total, ident, flags, proto = _V4_FIELDS(data, off)
    avail = n - off
    if total == 0:
        total = avail  # segmentation offload: the sender's capture has no length yet
    elif total < ihl:
        return IP_BAD
    src = data[off + 12:off + 16]
    dst = data[off + 16:off + 20]
    frag_offset = (flags & 0x1FFF) * 8
    more = bool(flags & 0x2000)
    key: FragmentKey | None = None
    if frag_offset or more:
        if frag_offset + total - ihl > 65535:
            return IP_BAD
        key = (4, src, dst, ident, proto)
    return IpPacket(4, v4_name(src), v4_name(dst), proto, off + ihl, off + min(total, avail),
                    total > avail, key, frag_offset, more)


def parse_ipv6(data: bytes, off: int) -> IpPacket | int:
    """The IPv6 header at ``data[off]`` and its extension headers, or :data:`IP_TRUNCATED` /
    :data:`IP_BAD`. A fragment's ``start`` is the start of its fragmentable part."""
    n = len(data)
    if n < off + 40:
        return IP_TRUNCATED
    if data[off] >> 4 != 6:
        return IP_BAD
    plen, nh = _V6_FIELDS(data, off)
    avail = n - off - 40
    if plen == 0:
        plen = avail  # a jumbogram or segmentation offload
    cut = plen > avail
    end = off + 40 + min(plen, avail)
    src = data[off + 8:off + 24]
    dst = data[off + 24:off + 40]
    p = off + 40
    key: FragmentKey | None = None
    frag_offset = 0
    more = False
    while nh in _EXTENSIONS:
        if p + 8 > end:
            return IP_TRUNCATED if cut else IP_BAD
        if nh == _FRAGMENT:
            next_nh, word, ident = _V6_FRAGMENT(data, p)
            p += 8
            nh = next_nh
            frag_offset = word & 0xFFF8
            more = bool(word & 1)
            if frag_offset or more:
                if frag_offset + end - p > 65535:
                    return IP_BAD
                key = (6, src, dst, ident, nh)
                break
            continue  # an atomic fragment (offset 0, no more): the packet is whole
        length = (data[p + 1] + 2) * 4 if nh == _AUTH else (data[p + 1] + 1) * 8
        nh = data[p]
        p += length
    if p > end:
        return IP_TRUNCATED if cut else IP_BAD
    return IpPacket(6, v6_name(src), v6_name(dst), nh, p, end, cut, key, frag_offset, more)


def skip_ipv6_extensions(data: bytes, nh: int) -> tuple[int, int] | int:
    """``(protocol, offset)`` of the transport header in a reassembled IPv6 datagram's
    fragmentable part, which may begin with extension headers; :data:`IP_BAD` if they run past
    its end or hold another fragment header."""
    p = 0
    end = len(data)
    while nh in _EXTENSIONS:
        if nh == _FRAGMENT or p + 8 > end:
            return IP_BAD
        length = (data[p + 1] + 2) * 4 if nh == _AUTH else (data[p + 1] + 1) * 8
        nh = data[p]
        p += length
    if p > end:
        return IP_BAD
    return nh, p


def address_name(version: int, raw: bytes) -> str:
    return v4_name(raw) if version == 4 else v6_name(raw)


class Incomplete(NamedTuple):
    """A fragmented datagram that never completed."""

    frames: tuple[tuple[str, int], ...]  # (file, frame number) of the fragments seen
    src: str
    dst: str
    ident: int
    proto: int
    have: int  # bytes of it seen
    total: int  # its length, -1 if its last fragment was not seen
    reason: str  # "timeout", "too many pending", "end of capture"


class _Set:
    __slots__ = ("first_ts", "total", "pieces", "frames", "size")

    def __init__(self, ts: int) -> None:
        self.first_ts = ts
        self.total = -1
        self.pieces: list[tuple[int, bytes]] = []
        self.frames: list[tuple[str, int]] = []
        self.size = 0


class Reassembler:
    """Fragments in, whole datagrams out (see the module's description).

    :meth:`add` returns ``(datagram, frames)`` when a fragment completes its datagram, where
    ``frames`` are the (file, frame number) of every fragment of it in arrival order, else None.
    Incomplete datagrams are counted in :attr:`incomplete_count`, and the first
    :attr:`max_listed` of them kept in :attr:`incomplete`."""

    def __init__(self, *, timeout_ns: int = 30_000_000_000, duplicate_window_ns: int = 1_000_000_000,
                 max_sets: int = 4096, max_bytes: int = 64 << 20, max_listed: int = 1000) -> None:
        self.timeout_ns = timeout_ns
        self.duplicate_window_ns = duplicate_window_ns
        self.max_sets = max_sets
        self.max_bytes = max_bytes
        self.max_listed = max_listed
        self._sets: dict[FragmentKey, _Set] = {}
        self._bytes = 0
        # Recently completed datagrams, to recognise a late duplicate of one of their fragments
        # instead of starting a new (forever incomplete) set with it.
        self._done: dict[FragmentKey, tuple[int, dict[int, bytes]]] = {}
        self.incomplete: list[Incomplete] = []
        self.incomplete_count = 0
        self.duplicates = 0
        self.inconsistent = 0  # fragments whose end contradicts the datagram's known length

    @property
    def pending(self) -> int:
        return len(self._sets)

    def add(self, key: FragmentKey, offset: int, more: bool, piece: bytes, ts_ns: int,
            file: str, frame: int) -> tuple[bytes, list[tuple[str, int]]] | None:
        sets = self._sets
        if sets:
            self.expire(ts_ns)
        done = self._done.get(key)
        if done is not None:
            if ts_ns - done[0] <= self.duplicate_window_ns and done[1].get(offset) == piece:
                self.duplicates += 1
                return None
            del self._done[key]  # the identification was used again, for a new datagram
        entry = sets.get(key)
        if entry is None:
            entry = sets[key] = _Set(ts_ns)
        else:
            for o, b in entry.pieces:
                if o == offset and b == piece:
                    self.duplicates += 1
                    return None
        entry.pieces.append((offset, piece))
        entry.frames.append((file, frame))
        entry.size += len(piece)
        self._bytes += len(piece)
        if not more:
            end = offset + len(piece)
            if entry.total < 0:
                entry.total = end
            elif entry.total != end:
                self.inconsistent += 1
        total = entry.total
        if total < 0 or entry.size < total:
            if len(sets) > self.max_sets or self._bytes > self.max_bytes:
                self.expire(ts_ns)
            return None
        reach = 0
        for o, b in sorted(entry.pieces, key=_first):
            if o > reach:
                return None  # a gap
            reach = max(reach, o + len(b))
            if reach >= total:
                break
        if reach < total:
            return None
        datagram = bytearray(total)
        # The first fragment captured wins where they overlap: write the later ones first.
        for o, b in reversed(entry.pieces):
            if o < total:
                part = b[:total - o]
                datagram[o:o + len(part)] = part
        del sets[key]
        self._bytes -= entry.size
        self._done[key] = (ts_ns, dict(reversed(entry.pieces)))
        return bytes(datagram), entry.frames

    def expire(self, now_ns: int) -> None:
        """Drop the sets older than the timeout (by capture time) and, while there are too many
        sets or bytes pending, the oldest: each counted and listed as incomplete."""
        sets = self._sets
        while sets:
            key = next(iter(sets))
            entry = sets[key]
            if now_ns - entry.first_ts > self.timeout_ns:
                reason = "timeout"
            elif len(sets) > self.max_sets or self._bytes > self.max_bytes:
                reason = "too many pending"
            else:
                break
            del sets[key]
            self._drop(key, entry, reason)
        done = self._done
        while done:
            key = next(iter(done))
            if now_ns - done[key][0] <= self.duplicate_window_ns:
                break
            del done[key]

    def finish(self) -> None:
        """End of the capture: every set still pending is incomplete."""
        for key, entry in self._sets.items():
            self._drop(key, entry, "end of capture")
        self._sets.clear()
        self._done.clear()
        self._bytes = 0

    def _drop(self, key: FragmentKey, entry: _Set, reason: str) -> None:
        self._bytes -= entry.size
        self.incomplete_count += 1
        if len(self.incomplete) < self.max_listed:
            version, src, dst, ident, proto = key
            self.incomplete.append(Incomplete(
                tuple(entry.frames), address_name(version, src), address_name(version, dst),
                ident, proto, entry.size, entry.total, reason,
            ))

    def report(self, limit: int = 20) -> str | None:
        """One sentence on the incomplete datagrams (None if there were none): how many, why
        that happens, and the frames that hold their fragments."""
        if not self.incomplete_count:
            return None
        count = self.incomplete_count
        by_file: dict[str, list[int]] = {}
        shown = 0
        for item in self.incomplete:
            if shown >= limit:
                break
            shown += 1
            for file, frame in item.frames:
                by_file.setdefault(file, []).append(frame)
        where = "; ".join(
            f"{file} frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, sorted(frames)))}"
            for file, frames in by_file.items()
        )
        more = ", ..." if count > shown else ""
        first_only = sum(1 for i in self.incomplete if i.total < 0 and len(i.frames) == 1)
        why = ("fragments missing from the capture; a capture filter on ports keeps only first "
               "fragments" if first_only else "fragments missing from the capture")
        return (f"{count} fragmented datagram{'s' if count != 1 else ''} incomplete ({why}): "
                f"{where}{more}")


def _first(item: tuple[int, bytes]) -> int:
    return item[0]
