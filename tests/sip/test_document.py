"""sip_document: Packetbeat's sip.* names, ECS names, and kamlog's capture origin."""

from __future__ import annotations

from kamlog.capture.packets import Payload
from kamlog.sip import parse_sip, sip_document

from .messages import INVITE, sip


class TestSipDocument:
    def test_a_request_has_packetbeats_names_and_the_ecs_envelope(self):
        doc = sip_document(sip(INVITE))
        assert doc == {
            "@timestamp": "2026-11-28T10:15:12.074978123Z",
            "event.dataset": "kamailio.sip",
            "sip.type": "request",
            "sip.method": "INVITE",
            "sip.uri.original": "sip:bob@biloxi.example.com;user=phone",
            "sip.uri.scheme": "sip",
            "sip.uri.username": "bob",
            "sip.uri.host": "biloxi.example.com",
            "sip.version": "2.0",
            "sip.call_id": "a84b4c76e66710@pc33.atlanta.example.com",
            "sip.cseq.code": 314159,
            "sip.cseq.method": "INVITE",
            "sip.from.display_info": 'Alice "A" Liddell',
            "sip.from.uri.original": "sip:alice@atlanta.example.com:5070",
            "sip.from.uri.scheme": "sip",
            "sip.from.uri.username": "alice",
            "sip.from.uri.host": "atlanta.example.com",
            "sip.from.uri.port": 5070,
            "sip.from.tag": "1928301774",
            "sip.to.display_info": "Bob",
            "sip.to.uri.original": "sip:bob@biloxi.example.com",
            "sip.to.uri.scheme": "sip",
            "sip.to.uri.username": "bob",
            "sip.to.uri.host": "biloxi.example.com",
            "sip.via.original": ["SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.101;rport=5066"],
            "sip.via.transport": "UDP",
            "sip.via.sent_by.address": "pc33.atlanta.example.com",
            "sip.via.received.address": "192.0.2.101",
            "sip.via.rport": 5066,
            "sip.via.branch": "z9hG4bKnashds8",
            "sip.contact.line": "<sip:alice@pc33.atlanta.example.com>",
            "sip.contact.uri.original": "sip:alice@pc33.atlanta.example.com",
            "sip.contact.uri.scheme": "sip",
            "sip.contact.uri.username": "alice",
            "sip.contact.uri.host": "pc33.atlanta.example.com",
            "sip.user_agent.original": "hand-made",
            "sip.content_type": "application/sdp",
            "sip.content_length": 153,
            "sip.max_forwards": 70,
            "sip.sdp.version": "0",
            "sip.sdp.owner.username": "alice",
            "sip.sdp.owner.session_id": "2890844526",
            "sip.sdp.owner.version": "2890844526",
            "sip.sdp.owner.ip": "pc33.atlanta.example.com",
            "sip.sdp.session.name": "-",
            "sip.sdp.connection.info": "IN IP4 192.0.2.101",
            "sip.sdp.connection.address": "192.0.2.101",
            "sip.sdp.media.type": ["audio"],
            "sip.sdp.media.port": [49172],
            "sip.sdp.media.proto": ["RTP/AVP"],
            "sip.sdp.media.format": ["0 8 9"],
            "sip.sdp.media.codecs": ["PCMU", "PCMA", "G722"],
            "source.ip": "192.0.2.1",
            "source.port": 5060,
            "destination.ip": "192.0.2.2",
            "destination.port": 5062,
            "network.transport": "udp",
            "network.protocol": "sip",
            "kamlog.capture.file": "hand.pcap",
            "kamlog.capture.frame": 7,
        }

    def test_a_malformed_response_has_its_code_status_and_error_message(self):
        doc = sip_document(sip("SIP/2.0 404 Not Found\nCSeq: 1 INVITE\n\n"))
        assert (doc["sip.type"], doc["sip.code"], doc["sip.status"]) == ("response", 404, "Not Found")
        assert doc["error.message"] == "no Call-ID header"
        assert "sip.call_id" not in doc

    def test_microsecond_captures_keep_six_digits_and_hep_parts_and_original_are_kept(self):
        data = b"OPTIONS sip:h SIP/2.0\r\nCall-ID: c@h\r\nCSeq: 1 OPTIONS\r\nX-CID: a@h\r\nP-KSR-SIPDump: udp pid=9 pno=2\r\n\r\n"
        msg = parse_sip(Payload(data, 1_000_000_000_123_456_000, 6, "::1", 1, "::1", 2, "tcp", "f.pcapng", 3, "hep", (1, 2)))
        assert msg is not None
        doc = sip_document(msg, original=True)
        assert doc["@timestamp"] == "2001-09-09T01:46:40.123456Z"
        assert (doc["kamlog.capture.via"], doc["kamlog.capture.parts"]) == ("hep", [1, 2])
        assert doc["event.original"] == data.decode()
        assert doc["sip.link_call_ids"] == ["a@h"]
        assert (doc["sip.sipdump.transport"], doc["sip.sipdump.pid"], doc["sip.sipdump.pno"]) == ("udp", 9, 2)
        assert sip_document(msg, link_headers=()).get("sip.link_call_ids") is None
