"""HEP, the Homer Encapsulation Protocol (versions 1, 2 and 3): the envelope Kamailio's siptrace
module (and heplify, captagent, ...) wraps around a captured SIP packet or a log line.

:func:`decode_hep` turns one datagram into a :class:`~kamlog.capture.packets.Payload` (a SIP
packet, with the addresses and time the HEP header gives), a :class:`HepLog` (type 100, a log
line tied to a call by its correlation id) or None (a type kamlog does not read). Every length
is checked against the packet; a lie is a :class:`HepError` naming it.
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from collections import Counter
from typing import NamedTuple

from kamlog.capture.packets import Payload
from kamlog.errors import KamlogError

MAGIC = b"HEP3"
TYPE_SIP = 1
TYPE_LOG = 100
MAX_PAYLOAD = 1 << 20  # a decompressed payload larger than this is an error, not a memory bomb

_TRANSPORTS = {17: "udp", 6: "tcp", 132: "sctp"}
_FAMILY_V4 = (2, socket.AF_INET)
_FAMILY_V6 = (10, 28, 30, socket.AF_INET6)  # Linux, BSD and macOS numbers of AF_INET6


class HepError(KamlogError):
    """A HEP packet whose structure is broken (a length that lies, a missing chunk)."""


class HepLog(NamedTuple):
    """A HEP type 100 record: a log line (Kamailio's ``hlog()``), tied to a call by correlation id."""

    ts_ns: int
    correlation_id: str
    message: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    capture_id: int
    file: str
    frame: int


#: HEP packets of a type kamlog does not read (RTCP 5, QoS 32, ...), by type, since the start.
SKIPPED_TYPES: Counter[int] = Counter()


def is_hep(data: bytes) -> bool:
    """A cheap test: does ``data`` look like a HEP envelope (v3 magic, or a v1/v2 header)?"""
    if data[:4] == MAGIC:
        return True
    return len(data) >= 16 and data[0] in (1, 2) and data[2] in _FAMILY_V4 + _FAMILY_V6


def decode_hep(data: bytes, file: str, frame: int, *,
               fallback_ts_ns: int = 0) -> Payload | HepLog | None:
    """Decode one HEP datagram; ``file``/``frame`` say where it was read (a capture and its frame
    number, or ``hep://host:port`` and the datagram's number). ``fallback_ts_ns`` (the capture
    or arrival time) stands in when the envelope carries no time (HEP v1, a v3 packet without
    a timestamp chunk)."""
    if data[:4] == MAGIC:
        return _decode_v3(data, file, frame, fallback_ts_ns)
    if data[:1] in (b"\x01", b"\x02"):
        return _decode_v12(data, file, frame, fallback_ts_ns)
    raise HepError(f"not a HEP packet: it starts with {data[:4]!r}")


def _ip(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def _decode_v3(data: bytes, file: str, frame: int, fallback_ts_ns: int) -> Payload | HepLog | None:
    if len(data) < 6:
        raise HepError(f"HEP3 packet of {len(data)} bytes is shorter than its 6-byte header")
    total = int.from_bytes(data[4:6], "big")
    if total < 6 or total > len(data):
        raise HepError(f"HEP3 total length {total} does not fit the {len(data)}-byte packet")
    family = proto = 0
    src_ip = dst_ip = ""
    src_port = dst_port = 0
    sec = usec = -1
    ptype = capture_id = 0
    payload: bytes | None = None
    correlation = b""
    pos = 6
    while pos < total:
        if total - pos < 6:
            raise HepError(f"HEP3 chunk header at byte {pos} is cut off by the packet end ({total})")
        vendor = int.from_bytes(data[pos:pos + 2], "big")
        ctype = int.from_bytes(data[pos + 2:pos + 4], "big")
        clen = int.from_bytes(data[pos + 4:pos + 6], "big")
        if clen < 6:
            raise HepError(f"HEP3 chunk type {ctype} at byte {pos} has length {clen}, "
                           "shorter than its 6-byte header")
        end = pos + clen
        if end > total:
            raise HepError(f"HEP3 chunk type {ctype} at byte {pos} has length {clen}, "
                           f"beyond the packet end ({total})")
        value = data[pos + 6:end]
        pos = end
        if vendor != 0:
            continue
        size = len(value)
        if ctype == 1:
            family = _uint(value, ctype, (1,))
        elif ctype == 2:
            proto = _uint(value, ctype, (1,))
        elif 3 <= ctype <= 6:  # IPv4 source, destination; IPv6 source, destination
            want, version = (4, 4) if ctype <= 4 else (16, 6)
            if size != want:
                raise HepError(f"HEP3 IPv{version} address chunk (type {ctype}) of {size} bytes, not {want}")
            if ctype % 2:
                src_ip = _ip(value)
            else:
                dst_ip = _ip(value)
        elif ctype == 7:
            src_port = _uint(value, ctype, (2,))
        elif ctype == 8:
            dst_port = _uint(value, ctype, (2,))
        elif ctype == 9:
            sec = _uint(value, ctype, (4,))
        elif ctype == 10:
            usec = _uint(value, ctype, (4,))
        elif ctype == 11:
            ptype = _uint(value, ctype, (1,))
        elif ctype == 12:
            capture_id = _uint(value, ctype, (2, 4))
        elif ctype == 15:
            payload = value
        elif ctype == 16:
            payload = _inflate(value)
        elif ctype == 17:
            correlation = value
    del family
    if ptype not in (TYPE_SIP, TYPE_LOG):
        SKIPPED_TYPES[ptype] += 1
        return None
    if payload is None:
        raise HepError(f"HEP3 packet of type {ptype} has no payload chunk")
    ts_ns = sec * 1_000_000_000 + max(usec, 0) * 1000 if sec >= 0 else fallback_ts_ns
    if ptype == TYPE_LOG:
        return HepLog(ts_ns, correlation.decode("utf-8", "replace"),
                      payload.decode("utf-8", "replace"), src_ip, src_port, dst_ip, dst_port,
                      capture_id, file, frame)
    return Payload(payload, ts_ns, 6, src_ip, src_port, dst_ip, dst_port,
                   _TRANSPORTS.get(proto, "udp"), file, frame, "hep")


def _uint(value: bytes, ctype: int, sizes: tuple[int, ...]) -> int:
    if len(value) not in sizes:
        want = " or ".join(map(str, sizes))
        raise HepError(f"HEP3 chunk type {ctype} holds {len(value)} bytes, not {want}")
    return int.from_bytes(value, "big")


def _inflate(value: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(value, MAX_PAYLOAD)
    except zlib.error as exc:
        raise HepError(f"HEP3 compressed payload does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise HepError(f"HEP3 compressed payload inflates beyond {MAX_PAYLOAD} bytes")
    return out


def _decode_v12(data: bytes, file: str, frame: int, fallback_ts_ns: int) -> Payload:
    """HEP v1 and v2: an 8-byte header (version, length, family, proto, ports), the two
    addresses, and in v2 the time (seconds, microseconds in the sender's byte order, little
    endian on every sender in practice) and a capture id, then the SIP packet."""
    version = data[0]
    if len(data) < 8:
        raise HepError(f"HEP{version} packet of {len(data)} bytes is shorter than its 8-byte header")
    family = data[2]
    proto = data[3]
    src_port = int.from_bytes(data[4:6], "big")
    dst_port = int.from_bytes(data[6:8], "big")
    if family in _FAMILY_V4:
        alen = 4
    elif family in _FAMILY_V6:
        alen = 16
    else:
        raise HepError(f"HEP{version} packet with unknown address family {family}")
    pos = 8 + 2 * alen
    time_len = 12 if version == 2 else 0  # struct hep_timehdr: two uint32 and a uint16, padded
    if len(data) < pos + time_len:
        raise HepError(f"HEP{version} packet of {len(data)} bytes is shorter than its "
                       f"{pos + time_len}-byte header")
    src_ip = _ip(data[8:8 + alen])
    dst_ip = _ip(data[8 + alen:pos])
    ts_ns = fallback_ts_ns
    if version == 2:
        sec = int.from_bytes(data[pos:pos + 4], "little")
        usec = int.from_bytes(data[pos + 4:pos + 8], "little")
        ts_ns = sec * 1_000_000_000 + usec * 1000
    payload = data[pos + time_len:]
    return Payload(payload, ts_ns, 6, src_ip, src_port, dst_ip, dst_port,
                   _TRANSPORTS.get(proto, "udp"), file, frame, "hep")
