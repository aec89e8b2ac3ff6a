"""Frames to transport payloads: link layer, IP, fragment reassembly, UDP and TCP.

:class:`PacketDecoder` is one stage of the capture pipeline: called with each frame (in capture
time order), it returns the payloads that frame completes, usually zero or one. UDP datagrams
come out whole (IP fragments reassembled); TCP segments go to a :class:`TcpSink` (the stream
reassembler), which returns the messages it frames out of the streams. At the end of the input,
:meth:`PacketDecoder.finish` flushes the TCP sink and reports the fragmented datagrams that
never completed.

Lengths are trusted as the kernel trusts them: a UDP datagram ends at its length field when
that is shorter than the IP packet; a header that claims more than the packet holds, in a frame
the snapshot length did not cut, is a bad header and the packet is dropped (the receiving kernel
drops it too). A frame cut by the snapshot length still gives what was captured of its payload
(counted in ``cut_payloads``): a SIP message's start names its call even when its body is lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol

from .ip import (
    IP_TRUNCATED, PROTO_SCTP, PROTO_TCP, PROTO_UDP, IpPacket, Reassembler, parse_ipv4, parse_ipv6,
    skip_ipv6_extensions, v4_name,
)
from .link import (
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, LINK_TRUNCATED, LINK_UNKNOWN, LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NFLOG, link_ip,
)
from .packets import Frame, Payload

#: TCP header flag bits, as on the wire (the ``flags`` handed to :meth:`TcpSink.segment`).
TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10
TCP_URG: Final = 0x20

# Ethertype, then IPv4 without options and UDP, in one unpack: ethertype, version+IHL, total
# length, flags+fragment offset, protocol, source, destination, source port, destination port,
# UDP length. Ethernet and Linux cooked v1 have the ethertype just before the IP header, cooked
# v2 has it 18 bytes before.
# The two addresses come as one 64-bit number, the key of one cache of both names.
_FAST_ETHERNET = struct.Struct(">HBxH2xHxB2xQHHH").unpack_from
_FAST_SLL2 = struct.Struct(">H18xBxH2xHxB2xQHHH").unpack_from
#: (source, destination) text by the two IPv4 addresses as one number; cleared when full.
_PAIRS: dict[int, tuple[str, str]] = {}


def _pair_names(pair: int) -> tuple[str, str]:
    if len(_PAIRS) >= 1 << 16:
        _PAIRS.clear()
    names = _PAIRS[pair] = (v4_name((pair >> 32).to_bytes(4, "big")), v4_name((pair & 0xFFFFFFFF).to_bytes(4, "big")))
    return names


_UDP = struct.Struct(">HHH").unpack_from
_TCP = struct.Struct(">HHIIBB").unpack_from  # ports, seq, ack, data offset, flags
_TCP_REST = struct.Struct(">I4xBB").unpack_from  # seq, data offset, flags (after the ports)

UdpLayout = tuple[Callable[[bytes, int], tuple[int, ...]], int, int]
#: The link types of the inline path: (unpack of ethertype + IPv4 + UDP, where it starts, where IP starts).
_FAST_LAYOUTS: Final[dict[int, UdpLayout]] = {
    LINKTYPE_ETHERNET: (_FAST_ETHERNET, 12, 14),
    LINKTYPE_LINUX_SLL2: (_FAST_SLL2, 0, 20),
    LINKTYPE_LINUX_SLL: (_FAST_ETHERNET, 14, 16),
}


def fast_udp_layout(linktype: int) -> UdpLayout | None:
    """How the inline path finds an unfragmented IPv4 UDP datagram in a frame of `linktype`:
    what a capture reader needs to decode the common case in its own loop (see pcap.py)."""
    return _FAST_LAYOUTS.get(linktype)


def udp_names(pair: int) -> tuple[str, str]:
    """The text of two IPv4 addresses given as one 64-bit number (cached)."""
    return _PAIRS.get(pair) or _pair_names(pair)


class TcpSink(Protocol):
    """The TCP stream reassembler (kamlog.capture.tcp) as the decoder sees it.

    :meth:`segment` receives every TCP segment that carries data or a SYN, FIN or RST flag, in
    capture order (pure acknowledgements are not passed on); ``flags`` is the TCP header's flag
    byte (:data:`TCP_FIN`, :data:`TCP_SYN`, :data:`TCP_RST`, ...). A segment the snapshot length
    cut carries only its captured bytes. Both return the payloads completed so far."""

    def segment(self, src_ip: str, src_port: int, dst_ip: str, dst_port: int, seq: int,
                flags: int, data: bytes, ts_ns: int, digits: int, file: str,
                frame: int) -> list[Payload]: ...

    def flush(self) -> list[Payload]: ...


@dataclass(slots=True)
class DecodeStats:
    """What the decoder met. Every frame counts once in ``frames`` and once in exactly one of
    ``non_ip``, ``truncated``, ``bad_headers``, ``udp`` (unfragmented), ``tcp``, ``other_l4`` or
    ``fragments`` (a fragment cut by the snapshot length counts as ``truncated``); each
    reassembled datagram then counts again in ``reassembled`` and in ``udp``/``tcp``/``other_l4``
    (or ``bad_headers``). So ``frames == non_ip + truncated + bad_headers + udp + tcp + other_l4
    + fragments - reassembled``."""

    frames: int = 0
    non_ip: int = 0  # ARP, LLDP, ... and frames of link types not read (see unknown_linktypes)
    truncated: int = 0  # headers cut short by the snapshot length
    udp: int = 0  # UDP datagrams passed on (reassembled ones included)
    tcp: int = 0  # TCP segments seen
    other_l4: int = 0  # ICMP, SCTP, ESP, ...
    fragments: int = 0  # frames holding an IP fragment
    reassembled: int = 0  # datagrams put together from fragments
    incomplete_fragment_sets: int = 0  # datagrams whose fragments never all arrived
    bad_headers: int = 0  # lying lengths, wrong IP versions: dropped as the kernel drops them
    cut_payloads: int = 0  # payloads passed on shorter than their length (snapshot length)
    duplicate_fragments: int = 0  # fragments seen twice (e.g. on two interfaces with -i any)
    tcp_skipped: int = 0  # TCP segments not reassembled because no TCP sink was given
    sctp: int = 0  # SCTP packets (also in other_l4): SIP over SCTP is not read
    unknown_linktypes: dict[int, int] = field(default_factory=dict)  # link type -> frames


class PacketDecoder:
    """Frame -> payloads (see the module's description). Call it with every frame of the capture
    in time order, then call :meth:`finish` once.

    ``tcp``: the TCP reassembler; without one, TCP segments are counted (``tcp_skipped``) and
    skipped. ``fragment_timeout_s``: capture time after which an incomplete fragmented datagram
    is given up (the Linux default, 30 s)."""

    def __init__(self, tcp: TcpSink | None = None, *, fragment_timeout_s: float = 30.0,
                 fast: bool = True) -> None:
        self.stats = DecodeStats()
        self.reassembler = Reassembler(timeout_ns=int(fragment_timeout_s * 1e9))
        self._tcp = tcp
        self._fast = fast  # False: every frame through the general path (for tests)

    def __call__(self, frame: Frame) -> list[Payload]:
        """The payloads this frame completes."""
        return list(self.payloads((frame,)))

    def payloads(self, frames: Iterable[Frame | Payload]) -> Iterator[Payload]:
        """The payloads `frames` complete, in order (then call :meth:`finish`). One loop over
        all frames rather than a call per frame: the common case (an unfragmented IPv4 UDP
        datagram on Ethernet or Linux cooked v1/v2) is decoded inline, with one unpack of the
        ethertype and the IPv4 and UDP headers. A reader that decoded that case in its own loop
        (``open_capture(..., decode_udp=True)``) hands over Payloads, which pass as they are."""
        stats = self.stats
        fast = self._fast
        new = tuple.__new__
        pairs = _PAIRS
        tcp = self._tcp
        count = udp = tcp_segments = 0
        try:
            for frame in frames:
                count += 1
                if isinstance(frame, Payload):
                    udp += 1
                    yield frame
                    continue
                data = frame[5]
                linktype = frame[4]
                if linktype == LINKTYPE_ETHERNET:
                    unpack, at, ip = _FAST_ETHERNET, 12, 14
                elif linktype == LINKTYPE_LINUX_SLL2:
                    unpack, at, ip = _FAST_SLL2, 0, 20
                elif linktype == LINKTYPE_LINUX_SLL:
                    unpack, at, ip = _FAST_ETHERNET, 14, 16
                else:
                    yield from self._decode(frame)
                    continue
                size = len(data)
                if size >= ip + 28 and fast:
                    etype, vihl, total, flags, proto, pair, sport, dport, ulen = unpack(data, at)
                    if (etype == 0x0800 and vihl == 0x45 and proto == PROTO_UDP and not flags & 0x3FFF
                            and 28 <= total <= size - ip and 8 <= ulen <= total - 20):
                        udp += 1
                        names = pairs.get(pair)
                        if names is None:
                            names = _pair_names(pair)
                        yield new(Payload, (
                            data[ip + 28:ip + 20 + ulen], frame[2], frame[3], names[0], sport, names[1], dport,
                            "udp", frame[0], frame[1], "", (),
                        ))
                        continue
                    # An unfragmented IPv4 TCP segment, straight to the stream reassembler.
                    if (etype == 0x0800 and vihl == 0x45 and proto == PROTO_TCP and not flags & 0x3FFF
                            and 40 <= total <= size - ip and tcp is not None):
                        seq, offset_byte, tcp_flags = _TCP_REST(data, ip + 24)
                        header = (offset_byte >> 4) * 4
                        if 20 <= header <= total - 20:
                            tcp_segments += 1
                            payload = data[ip + 20 + header:ip + total]
                            if payload or tcp_flags & (TCP_FIN | TCP_SYN | TCP_RST):
                                names = pairs.get(pair)
                                if names is None:
                                    names = _pair_names(pair)
                                yield from tcp.segment(names[0], sport, names[1], dport, seq, tcp_flags, payload,
                                                       frame[2], frame[3], frame[0], frame[1])
                            continue
                yield from self._decode(frame)
        finally:
            stats.frames += count
            stats.udp += udp
            stats.tcp += tcp_segments

    def _decode(self, frame: Frame) -> list[Payload]:
        """The general path: any link type, IPv4 with options, IPv6, fragments, TCP, damage."""
        stats = self.stats
        data = frame[5]
        snap_cut = frame[6] > len(data) or frame[4] == LINKTYPE_NFLOG
        ethertype, off = link_ip(frame[4], data)
        if ethertype == ETHERTYPE_IPV4:
            parsed = parse_ipv4(data, off)
        elif ethertype == ETHERTYPE_IPV6:
            parsed = parse_ipv6(data, off)
        elif ethertype == LINK_TRUNCATED:
            if snap_cut:
                stats.truncated += 1
            else:
                stats.bad_headers += 1
            return []
        else:
            stats.non_ip += 1
            if ethertype == LINK_UNKNOWN:
                unknown = stats.unknown_linktypes
                unknown[frame[4]] = unknown.get(frame[4], 0) + 1
            return []
        if isinstance(parsed, int):
            if parsed == IP_TRUNCATED and snap_cut:
                stats.truncated += 1
            else:
                stats.bad_headers += 1
            return []
        if parsed.cut and not snap_cut:
            stats.bad_headers += 1  # its length field lies: the frame was not cut
            return []
        if parsed.key is None:
            return self._transport(frame, parsed, parsed.proto, data, parsed.start, parsed.end,
                                   parsed.cut, ())
        if parsed.cut:
            stats.truncated += 1  # a fragment cut short cannot be put back together
            return []
        stats.fragments += 1
        reassembler = self.reassembler
        done = reassembler.add(parsed.key, parsed.frag_offset, parsed.more,
                               data[parsed.start:parsed.end], frame[2], frame[0], frame[1])
        stats.duplicate_fragments = reassembler.duplicates
        stats.incomplete_fragment_sets = reassembler.incomplete_count
        if done is None:
            return []
        datagram, frames = done
        stats.reassembled += 1
        proto = parsed.proto
        start = 0
        if parsed.version == 6:
            found = skip_ipv6_extensions(datagram, proto)
            if isinstance(found, int):
                stats.bad_headers += 1
                return []
            proto, start = found
        name, number = frame[0], frame[1]
        parts = tuple(sorted({n for f, n in frames if f == name and n != number}))
        return self._transport(frame, parsed, proto, datagram, start, len(datagram), False, parts)

    def _transport(self, frame: Frame, ip: IpPacket, proto: int, data: bytes, start: int,
                   end: int, cut: bool, parts: tuple[int, ...]) -> list[Payload]:
        stats = self.stats
        avail = end - start
        if proto == PROTO_UDP:
            if avail < 8:
                return self._short(cut)
            sport, dport, ulen = _UDP(data, start)
            if ulen == 0:
                ulen = avail  # an IPv6 jumbogram (or offload): the IP length says
            elif ulen < 8:
                stats.bad_headers += 1
                return []
            if ulen > avail:
                if not cut:
                    stats.bad_headers += 1  # the kernel drops it: the application never saw it
                    return []
                stats.cut_payloads += 1
                ulen = avail
            stats.udp += 1
            return [Payload(data[start + 8:start + ulen], frame[2], frame[3], ip.src, sport, ip.dst,
                            dport, "udp", frame[0], frame[1], "", parts)]
        if proto == PROTO_TCP:
            if avail < 20:
                return self._short(cut)
            sport, dport, seq, _ack, offset_byte, flags = _TCP(data, start)
            header = (offset_byte >> 4) * 4
            if header < 20 or header > avail:
                if cut and header >= 20:
                    stats.truncated += 1
                else:
                    stats.bad_headers += 1
                return []
            stats.tcp += 1
            if self._tcp is None:
                stats.tcp_skipped += 1
                return []
            payload = data[start + header:end]
            if not payload and not flags & (TCP_FIN | TCP_SYN | TCP_RST):
                return []  # a pure acknowledgement: nothing for the stream
            if cut:
                stats.cut_payloads += 1
            return self._tcp.segment(ip.src, sport, ip.dst, dport, seq, flags, payload, frame[2],
                                     frame[3], frame[0], frame[1])
        stats.other_l4 += 1
        if proto == PROTO_SCTP:
            stats.sctp += 1
        return []

    def _short(self, cut: bool) -> list[Payload]:
        """A transport header that does not fit: the snapshot length cut it, or it lies."""
        if cut:
            self.stats.truncated += 1
        else:
            self.stats.bad_headers += 1
        return []

    def finish(self) -> list[Payload]:
        """End of the input: gives up the fragmented datagrams still incomplete (counted, and
        described by :meth:`notes`), flushes the TCP sink and returns what it completes."""
        reassembler = self.reassembler
        reassembler.finish()
        stats = self.stats
        stats.incomplete_fragment_sets = reassembler.incomplete_count
        stats.duplicate_fragments = reassembler.duplicates
        return self._tcp.flush() if self._tcp is not None else []

    def notes(self) -> list[str]:
        """Sentences for the user about what was skipped or damaged (empty when nothing was);
        complete once :meth:`finish` has run."""
        stats = self.stats
        notes: list[str] = []
        report = self.reassembler.report()
        if report:
            notes.append(report)
        if stats.truncated:
            notes.append(f"{_count(stats.truncated, 'frame')} cut by the snapshot length before the "
                         "end of their headers (tcpdump -s): skipped")
        if stats.cut_payloads:
            notes.append(f"{_count(stats.cut_payloads, 'payload')} cut short by the snapshot length "
                         "(tcpdump -s): passed on as captured")
        if stats.bad_headers:
            notes.append(f"{_count(stats.bad_headers, 'packet')} with malformed headers (lengths "
                         "beyond the packet, wrong IP versions): skipped, as the kernel drops them")
        if stats.tcp_skipped:
            notes.append(f"{_count(stats.tcp_skipped, 'TCP segment')} skipped: no TCP reassembly")
        if stats.sctp:
            notes.append(f"{_count(stats.sctp, 'SCTP packet')} skipped: SIP over SCTP is not read")
        for linktype, count in sorted(stats.unknown_linktypes.items()):
            notes.append(f"{_count(count, 'frame')} of link type {linktype} skipped: that link "
                         "type is not read")
        return notes


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
