"""Packet builders for the capture tests: Ethernet, VLAN tags, IPv4 and IPv6 (with extension
headers), UDP and TCP, and fragmentation as a sending kernel does it. Checksums are computed, so
tshark reads the packets as a real host's."""

from __future__ import annotations

import socket
import struct

_ids = iter(range(0x1000, 0x10000))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(ip: bytes, *, tags: tuple[int, ...] = (), ethertype: int | None = None) -> bytes:
    """An Ethernet frame around ``ip``; ``tags`` are VLAN TPIDs (0x8100, 0x88a8, 0x9100)."""
    if ethertype is None:
        ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    head = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    for i, tpid in enumerate(tags):
        head += struct.pack("!HH", tpid, 100 + i)
    return head + struct.pack("!H", ethertype) + ip


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int | None = None, flags: int = 0x4000,
         offset: int = 0, options: bytes = b"", total: int | None = None) -> bytes:
    ident = next(_ids) if ident is None else ident
    ihl = (20 + len(options)) // 4
    length = 20 + len(options) + len(payload) if total is None else total
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, flags | (offset // 8), 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + options
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, v6: bool = False) -> bytes:
    length = 8 + len(payload)
    family = socket.AF_INET6 if v6 else socket.AF_INET
    pseudo = socket.inet_pton(family, src) + socket.inet_pton(family, dst)
    pseudo += struct.pack("!IxxxB", length, 17) if v6 else struct.pack("!xBH", 17, length)
    head = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(pseudo + head + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", ack: int = 0) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, **kw: int) -> bytes:
    return ipv4(src, dst, 17, udp(src, dst, sport, dport, payload), **kw)


def ipv6(src: str, dst: str, nh: int, payload: bytes, *, plen: int | None = None) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload) if plen is None else plen, nh, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload


def ipv6_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, extensions: bytes = b"",
             first_nh: int = 17) -> bytes:
    """``extensions``: already-built extension headers ending in one whose next header is UDP;
    ``first_nh``: the type of the first of them."""
    return ipv6(src, dst, first_nh if extensions else 17, extensions + udp(src, dst, sport, dport, payload, v6=True))


def ext_header(nh: int, body_len: int = 6) -> bytes:
    """A hop-by-hop / destination options / routing header of (body_len + 2) bytes (padded)."""
    total = 2 + body_len
    assert total % 8 == 0
    return struct.pack("!BB", nh, total // 8 - 1) + b"\x01" + bytes([body_len - 2]) + bytes(body_len - 2)


def fragment_ipv4(packet: bytes, mtu: int = 1500) -> list[bytes]:
    """An IPv4 packet (no options) cut into fragments of at most ``mtu`` bytes, as a kernel does."""
    src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    ident, proto = struct.unpack("!H", packet[4:6])[0], packet[9]
    data = packet[20:]
    step = (mtu - 20) // 8 * 8
    out = []
    for off in range(0, len(data), step):
        more = 0x2000 if off + step < len(data) else 0
        out.append(ipv4(src, dst, proto, data[off:off + step], ident=ident, flags=more, offset=off))
    return out


def fragment_ipv6(packet: bytes, mtu: int = 1500, ident: int = 0x7A3B1C2D, unfragmentable: int = 0) -> list[bytes]:
    """An IPv6 packet cut into fragments: a fragment header after the first ``unfragmentable``
    bytes of extension headers (hop-by-hop, routing), the rest fragmented."""
    head = packet[:40]
    nh = packet[6]
    rest = packet[40:]
    unfrag, data = rest[:unfragmentable], rest[unfragmentable:]
    if unfragmentable:  # the last unfragmentable header now points at the fragment header
        frag_nh = unfrag[0]
        unfrag = b"\x2c" + unfrag[1:]
    else:
        frag_nh, nh = nh, 44
    step = (mtu - 40 - len(unfrag) - 8) // 8 * 8
    out = []
    for off in range(0, len(data), step):
        chunk = data[off:off + step]
        more = 1 if off + step < len(data) else 0
        frag = struct.pack("!BxHI", frag_nh, off | more, ident)
        payload = unfrag + frag + chunk
        out.append(head[:4] + struct.pack("!HB", len(payload), nh) + head[7:] + payload)
    return out
