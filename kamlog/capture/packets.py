"""The records that flow from a capture file to the SIP parser: frames, then payloads.

Tuples (NamedTuple) rather than dataclasses: a capture holds millions of them and a tuple is
the cheapest object Python builds."""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    """One captured link-layer frame, as the capture file holds it."""

    file: str  # the capture's path, as given
    number: int  # 1-based within its file, as Wireshark and tshark count (frame.number)
    ts_ns: int  # capture time, nanoseconds since the epoch (UTC)
    digits: int  # fraction digits the capture's timestamp unit can show: 6 for µs, 9 for ns (pcapng: 0-9)
    linktype: int  # LINKTYPE_* of the file or the pcapng interface
    data: bytes  # the captured bytes (shorter than wire_len when snaplen cut the frame)
    wire_len: int  # the frame's length on the wire


class Payload(NamedTuple):
    """One transport payload that may carry SIP: a UDP datagram (IP fragments reassembled), one
    message framed out of a TCP stream or a WebSocket frame, or the packet a HEP envelope carried.
    `file`/`frame` point at the frame that completed it (the last fragment or segment)."""

    data: bytes
    ts_ns: int
    digits: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    transport: str  # "udp", "tcp", "tls", "ws", "wss", "sctp" (HEP says which)
    file: str
    frame: int
    # "hep" when a HEP envelope carried it (addresses and time are then the HEP header's).
    via: str = ""
    # The other frames of the same file that carried parts of it (IP fragments, TCP segments),
    # so that `kamlog export` writes them all; empty when one frame carried it whole.
    parts: tuple[int, ...] = ()
