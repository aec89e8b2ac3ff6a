"""A tiny classic-pcap reader for the SIP tests: UDP payloads as `Payload`s.

Only what the test captures hold (classic pcap, µs or ns; Ethernet, Linux SLL, BSD loopback;
IPv4 or IPv6 without extension headers; unfragmented UDP), so that the SIP parser's tests do
not depend on the capture readers written beside it."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

from kamlog.capture.packets import Payload

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 6),
    b"\xa1\xb2\xc3\xd4": (">", 6),
    b"\x4d\x3c\xb2\xa1": ("<", 9),
    b"\xa1\xb2\x3c\x4d": (">", 9),
}


def udp_payloads(path: str | Path) -> list[Payload]:
    """Every UDP payload of a classic pcap file, with its 1-based frame number."""
    data = Path(path).read_bytes()
    endian, digits = _MAGIC[data[:4]]
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    offset, number, out = 24, 0, []
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        number += 1
        ts_ns = sec * 1_000_000_000 + (frac * 1000 if digits == 6 else frac)
        payload = _udp(frame, linktype)
        if payload is not None:
            src, sport, dst, dport, body = payload
            out.append(Payload(body, ts_ns, digits, src, sport, dst, dport, "udp", str(path), number))
    return out


def _udp(frame: bytes, linktype: int) -> tuple[str, int, str, int, bytes] | None:
    if linktype == 1:  # Ethernet
        ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
    elif linktype == 113:  # Linux cooked
        ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
    elif linktype == 276:  # Linux cooked v2
        ethertype, ip = struct.unpack("!H", frame[0:2])[0], frame[20:]
    elif linktype == 0:  # BSD loopback
        ethertype, ip = (0x0800 if frame[0] == 2 or frame[3] == 2 else 0x86DD), frame[4:]
    else:
        return None
    if ethertype == 0x0800 and ip and ip[0] >> 4 == 4:
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            return None
        src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
        total = struct.unpack("!H", ip[2:4])[0]
        udp = ip[header:total]
    elif ethertype == 0x86DD and ip and ip[0] >> 4 == 6:
        if ip[6] != 17:
            return None
        src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
        udp = ip[40 : 40 + struct.unpack("!H", ip[4:6])[0]]
    else:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    return src, sport, dst, dport, udp[8:length]
