"""Helpers: a Payload around hand-made bytes."""

from __future__ import annotations

from kamlog.capture.packets import Payload
from kamlog.sip import SipMessage, parse_sip


def payload(data: bytes, *, ts_ns: int = 1_795_860_912_074_978_123, digits: int = 9) -> Payload:
    return Payload(data, ts_ns, digits, "192.0.2.1", 5060, "192.0.2.2", 5062, "udp", "hand.pcap", 7)


def sip(text: str | bytes) -> SipMessage:
    """Parses a message written with `\\n` line ends (turned into CRLF) or given as bytes."""
    data = text if isinstance(text, bytes) else text.replace("\n", "\r\n").encode()
    msg = parse_sip(payload(data))
    assert msg is not None
    return msg


INVITE = """INVITE sip:bob@biloxi.example.com;user=phone SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.101;rport=5066
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: "Alice \\"A\\" Liddell" <sip:alice@atlanta.example.com:5070>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
User-Agent: hand-made
Content-Type: application/sdp
Content-Length: 153

v=0
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com
s=-
c=IN IP4 192.0.2.101
t=0 0
m=audio 49172 RTP/AVP 0 8 9
a=rtpmap:0 PCMU/8000
"""
