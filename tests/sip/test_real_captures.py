"""Every SIP message of real captures parses to what tshark dissects from the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamlog.sip import SipMessage, parse_sip

from .pcap_records import udp_payloads
from .tshark import tshark_sip

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "capture.pcap"


def parsed(pcap: Path) -> dict[int, SipMessage | None]:
    return {payload.frame: parse_sip(payload) for payload in udp_payloads(pcap)}


def first(values: list[str]) -> str | None:
    return values[0] if values else None


def assert_like_tshark(pcap: Path) -> int:
    """Compares every field tshark has for every SIP frame; returns how many frames."""
    reference = tshark_sip(pcap)
    messages = parsed(pcap)
    assert reference, "tshark found no SIP"
    assert {n for n, m in messages.items() if m is not None} == set(reference)
    for number, ref in reference.items():
        msg = messages[number]
        assert msg is not None
        where = f"{pcap.name} frame {number}"
        assert msg.error is None, where
        assert msg.call_id == first(ref["sip.Call-ID"]), where
        assert msg.method == first(ref["sip.Method"]), where
        assert msg.status_code == (int(ref["sip.Status-Code"][0]) if ref["sip.Status-Code"] else None), where
        assert msg.cseq_num == int(ref["sip.CSeq.seq"][0]), where
        assert msg.cseq_method == first(ref["sip.CSeq.method"]), where
        assert msg.from_tag == first(ref["sip.from.tag"]), where
        assert msg.to_tag == first(ref["sip.to.tag"]), where
        assert msg.branch == first(ref["sip.Via.branch"]), where
        assert [via.branch for via in msg.vias] == ref["sip.Via.branch"], where
        assert [via.host for via in msg.vias] == ref["sip.Via.sent-by.address"], where
        assert [via.transport for via in msg.vias] == ref["sip.Via.transport"], where
        assert msg.request_uri == first(ref["sip.r-uri"]), where
        assert [c.uri.original for c in msg.contacts] == ref["sip.contact.uri"], where
        assert msg.from_uri == first(ref["sip.from.addr"]), where
        assert msg.to_uri == first(ref["sip.to.addr"]), where
        assert msg.user_agent == first(ref["sip.User-Agent"]), where
        assert msg.server == first(ref["sip.Server"]), where
        assert msg.content_type == first(ref["sip.Content-Type"]), where
        sdp = msg.sdp
        if ref["sdp.media.media"]:
            assert sdp is not None, where
            assert sdp.connection_address == first(ref["sdp.connection_info.address"]), where
            assert [m.type for m in sdp.media] == ref["sdp.media.media"], where
            assert [str(m.port) for m in sdp.media] == ref["sdp.media.port"], where
            assert [m.proto for m in sdp.media] == ref["sdp.media.proto"], where
        else:
            assert sdp is None, where
    return len(reference)


class TestExampleCapture:
    def test_every_message_has_the_fields_tshark_dissects(self):
        assert assert_like_tshark(EXAMPLE) == 44

    def test_the_forwarded_invite_has_the_proxys_via_on_top_of_the_callers(self):
        msg = parsed(EXAMPLE)[11]
        assert msg is not None
        assert [(v.host, v.port, v.branch) for v in msg.vias] == [
            ("127.0.0.1", 43047, "z9hG4bKb6f1.1d2e48224ba90bfef5924825f4c15372.0"),
            ("127.0.0.1", 53694, "z9hG4bK6692inv1"),
        ]
        assert msg.from_ is not None and msg.from_.display == "Caller"
        assert msg.max_forwards == 69 and msg.content_length == 130 == len(msg.body)
        assert msg.sdp is not None and msg.sdp.media[0].codecs == ["PCMU"]

    def test_timestamps_keep_the_captures_microseconds(self):
        msg = parsed(EXAMPLE)[1]
        assert msg is not None
        assert msg.ts_ns == 1795860912074978000
        assert msg.timestamp == "2026-11-28T10:15:12.074978Z"


@pytest.mark.realworld
class TestSippCaptures:
    def test_sipps_builtin_uac_and_uas_parse_like_tshark(self, sipp_builtin_capture):
        assert assert_like_tshark(sipp_builtin_capture) >= 5 * 6

    def test_compact_forms_from_a_sipp_scenario_parse_like_tshark(self, sipp_compact_capture):
        assert assert_like_tshark(sipp_compact_capture) >= 3 * 6

    def test_the_compact_invite_gives_its_link_header_codecs_and_multipart_sdp(self, sipp_compact_capture):
        invite = next(m for m in parsed(sipp_compact_capture).values() if m is not None and m.method == "INVITE")
        assert invite.link_call_ids == ["leg-a-1@kamlog.test"]
        assert invite.headers.get_list("Supported") == ["timer", "100rel"]
        assert invite.headers["Subject"] == "compact forms"
        assert invite.contacts[0].params == {"expires": "60"}
        assert [v.received for v in invite.vias] == [None, "192.0.2.99", None]
        assert invite.sdp is not None
        assert [m.codecs for m in invite.sdp.media] == [["PCMA", "G729", "telephone-event"], ["H261"]]


@pytest.mark.realworld
class TestKamailioSipdump:
    def test_the_sipdump_header_gives_transport_pid_and_process_number(self, corpus):
        dumps = sorted(Path(corpus).glob("sipdump-*.pcap"))
        assert dumps
        messages = [parse_sip(p) for p in udp_payloads(dumps[0])]
        assert messages and all(m is not None and m.error is None for m in messages)
        for msg in messages:
            assert msg is not None and msg.sipdump is not None
            assert msg.sipdump.transport == "udp"
            assert isinstance(msg.sipdump.pid, int) and msg.sipdump.pid > 0
            assert isinstance(msg.sipdump.pno, int)
        assert assert_like_tshark(dumps[0]) == len(messages)
