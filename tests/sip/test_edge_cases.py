"""Hand-made messages: the forms real SIP takes that the captures do not show, and broken ones."""

from __future__ import annotations

from kamlog.sip import parse_sip

from .messages import INVITE, payload, sip


class TestWellFormed:
    def test_a_textbook_invite_gives_every_field(self):
        msg = sip(INVITE)
        assert msg.error is None
        assert (msg.method, msg.request_uri, msg.version) == ("INVITE", "sip:bob@biloxi.example.com;user=phone", "2.0")
        assert (msg.call_id, msg.cseq_num, msg.cseq_method) == ("a84b4c76e66710@pc33.atlanta.example.com", 314159, "INVITE")
        assert (msg.from_tag, msg.to_tag, msg.branch) == ("1928301774", None, "z9hG4bKnashds8")
        assert msg.from_ is not None and msg.from_.display == 'Alice "A" Liddell'
        assert msg.from_.uri.port == 5070 and msg.from_.uri.user == "alice"
        assert msg.uri is not None and msg.uri.params == {"user": "phone"}
        via = msg.vias[0]
        assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "pc33.atlanta.example.com", None)
        assert (via.received, via.rport) == ("192.0.2.101", 5066)
        assert msg.sdp is not None and msg.sdp.media[0].codecs == ["PCMU", "PCMA", "G722"]
        assert msg.sdp.origin is not None and msg.sdp.origin.username == "alice"

    def test_a_response_gives_its_code_and_reason(self):
        msg = sip("SIP/2.0 486 Busy Here\nCall-ID: x\nCSeq: 1 INVITE\nTo: <sip:b@h>;tag=t2\n\n")
        assert (msg.is_request, msg.status_code, msg.reason, msg.to_tag) == (False, 486, "Busy Here", "t2")

    def test_compact_forms_are_found_by_their_full_names(self):
        msg = sip("BYE sip:b@h SIP/2.0\nv: SIP/2.0/TCP h:5061;branch=z9hG4bKc\nf: <sip:a@h>;tag=1\n"
                  "t: <sip:b@h>;tag=2\ni: compact@h\nCSeq: 2 BYE\nm: <sip:a@10.0.0.1>\nl: 0\nk: path\n"
                  "s: hi\ne: gzip\no: presence\nr: <sip:c@h>\nb: <sip:a@h>\nu: talk\nx: 1800\na: *;audio\n"
                  "j: *;video\nd: proxy\ny: abc\nn: <https://x>\nc: text/plain\n\n")  # fmt: skip
        assert (msg.call_id, msg.from_tag, msg.to_tag, msg.branch) == ("compact@h", "1", "2", "z9hG4bKc")
        names = [name for name, _ in msg.headers]
        assert names == ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Supported",
                         "Subject", "Content-Encoding", "Event", "Refer-To", "Referred-By", "Allow-Events",
                         "Session-Expires", "Accept-Contact", "Reject-Contact", "Request-Disposition",
                         "Identity", "Identity-Info", "Content-Type"]  # fmt: skip
        assert msg.headers.get("call-id") == msg.headers.get("I") == "compact@h"
        assert msg.content_type == "text/plain" and msg.content_length == 0

    def test_header_names_match_in_any_case_and_with_space_before_the_colon(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nCALL-ID : odd@h\ncseq:7 OPTIONS\nvIa :SIP/2.0/UDP h;BRANCH=z9hG4bKodd\n"
                  "FROM: <sip:a@h>;TAG=ft\n\n")
        assert (msg.call_id, msg.cseq_num, msg.branch, msg.from_tag) == ("odd@h", 7, "z9hG4bKodd", "ft")

    def test_folded_header_lines_are_unfolded(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nCall-ID:\n  folded@h\nCSeq: 1\n\tOPTIONS\nSubject: one\n two\n\n")
        assert (msg.call_id, msg.cseq_num, msg.cseq_method) == ("folded@h", 1, "OPTIONS")
        assert msg.headers["Subject"] == "one two"
        assert msg.error is None

    def test_vias_are_read_in_order_across_headers_and_commas(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5061;branch=z9hG4bK2\n"
                  "Call-ID: v@h\nv: SIP / 2.0 / TLS [2001:db8::1]:5061;branch=z9hG4bK3;rport\n"
                  "Via: SIP/2.0/WS c.invalid;branch=z9hG4bK4\nCSeq: 1 OPTIONS\n\n")
        assert msg.branch == "z9hG4bK1"
        assert [(v.transport, v.host, v.port, v.branch) for v in msg.vias] == [
            ("UDP", "a", None, "z9hG4bK1"), ("TCP", "b", 5061, "z9hG4bK2"),
            ("TLS", "2001:db8::1", 5061, "z9hG4bK3"), ("WS", "c.invalid", None, "z9hG4bK4"),
        ]  # fmt: skip
        assert msg.vias[2].params == {"branch": "z9hG4bK3", "rport": None} and msg.vias[2].rport is None

    def test_several_contacts_and_a_quoted_comma_are_split_right(self):
        msg = sip('REGISTER sip:h SIP/2.0\nCall-ID: r@h\nCSeq: 1 REGISTER\n'
                  'Contact: "Doe, John" <sip:j@10.0.0.1>;expires=0, <sip:j@10.0.0.2;transport=tcp>\n'
                  "Contact: sip:j@10.0.0.3;expires=0\nExpires: 0\n\n")
        assert [(c.display, c.uri.host, c.params.get("expires")) for c in msg.contacts] == [
            ("Doe, John", "10.0.0.1", "0"), (None, "10.0.0.2", None), (None, "10.0.0.3", "0")]
        assert msg.unregisters

    def test_the_sdp_part_of_a_multipart_body_is_found(self):
        body = ("--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x02\xff\r\n"
                "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP6 2001:db8::5\r\n"
                "m=audio 4000 RTP/SAVP 96 13\r\na=rtpmap:96 opus/48000/2\r\n--b1--\r\n").encode("latin-1")
        head = (f"INVITE sip:h SIP/2.0\r\nCall-ID: mp@h\r\nCSeq: 1 INVITE\r\n"
                f'Content-Type: multipart/mixed;boundary="b1"\r\nContent-Length: {len(body)}\r\n\r\n').encode()
        msg = sip(head + body)
        assert msg.error is None
        assert msg.sdp is not None and msg.sdp.connection_address == "2001:db8::5"
        assert [(m.port, m.proto, m.codecs) for m in msg.sdp.media] == [(4000, "RTP/SAVP", ["opus", "CN"])]

    def test_crlfs_before_the_start_line_are_skipped(self):
        msg = sip(b"\r\n\r\nOPTIONS sip:h SIP/2.0\r\nCall-ID: k@h\r\nCSeq: 1 OPTIONS\r\n\r\n")
        assert (msg.method, msg.call_id, msg.error) == ("OPTIONS", "k@h", None)

    def test_lf_only_line_ends_are_accepted(self):
        msg = sip(b"SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bKlf\nCall-ID: lf@h\nCSeq: 1 OPTIONS\n"
                  b"Content-Length: 4\n\nbody")
        assert (msg.status_code, msg.call_id, msg.branch, msg.body, msg.error) == (200, "lf@h", "z9hG4bKlf", b"body", None)

    def test_a_huge_header_count_is_parsed_in_order(self):
        lines = "".join(f"X-H{i}: {i}\n" for i in range(20_000))
        msg = sip(f"OPTIONS sip:h SIP/2.0\n{lines}Call-ID: many@h\nCSeq: 1 OPTIONS\nX-H5: again\n\n")
        assert msg.call_id == "many@h" and len(msg.headers) == 20_003
        assert msg.headers.get_all("x-h5") == ["5", "again"]

    def test_link_headers_give_the_other_legs_call_ids(self):
        msg = sip("INVITE sip:h SIP/2.0\nCall-ID: b-leg@h\nCSeq: 1 INVITE\nx-cid: a-leg@h\nX-Call-ID: a-leg@h\n"
                  "X-Orig-Call-ID: first@h\nX-Other: o@h\n\n")
        assert msg.link_call_ids == ["a-leg@h", "first@h"]
        assert msg.call_ids_in(("X-Other",)) == ["o@h"]

    def test_the_sipdump_header_is_read_with_ints(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nP-KSR-SIPDump: tcp pid=4242 pno=7\nCall-ID: d@h\nCSeq: 1 OPTIONS\n\n")
        assert msg.sipdump is not None and msg.sipdump[1:] == ("tcp", 4242, 7)


class TestMalformedIsKept:
    def test_a_start_line_only_is_kept_without_call_id(self):
        msg = sip(b"OPTIONS sip:h SIP/2.0\r\n")
        assert msg.call_id is None and msg.error == "no Call-ID header; no CSeq header"

    def test_a_missing_call_id_is_named(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nCSeq: 1 OPTIONS\n\n")
        assert msg.error == "no Call-ID header"

    def test_a_bad_status_code_is_named(self):
        msg = sip("SIP/2.0 2x0 OK\nCall-ID: s@h\nCSeq: 1 INVITE\n\n")
        assert msg.status_code is None and msg.error == "status code '2x0' is not 3 digits"

    def test_a_bad_cseq_is_named(self):
        assert sip("OPTIONS sip:h SIP/2.0\nCall-ID: c@h\nCSeq: OPTIONS\n\n").error == "CSeq 'OPTIONS' is not a number and a method"

    def test_a_header_line_without_colon_is_named_and_the_rest_kept(self):
        msg = sip("OPTIONS sip:h SIP/2.0\nCall-ID: c@h\nthis is no header\nCSeq: 1 OPTIONS\n\n")
        assert msg.error == "header line 'this is no header' has no colon"
        assert msg.headers["CSeq"] == "1 OPTIONS"

    def test_a_body_cut_short_by_the_snaplen_is_named(self):
        msg = sip(INVITE.replace("\n", "\r\n").encode()[:-40])
        assert msg.error == "body is 113 bytes, shorter than its Content-Length 153 (truncated)"
        assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com" and len(msg.body) == 113

    def test_headers_cut_before_the_empty_line_are_named(self):
        msg = sip(INVITE.replace("\n", "\r\n").encode()[:200])
        assert msg.error is not None and "no empty line after the headers (truncated?)" in msg.error

    def test_bytes_that_are_not_utf8_are_named_and_replaced(self):
        msg = sip(b"OPTIONS sip:h SIP/2.0\r\nCall-ID: c@h\r\nCSeq: 1 OPTIONS\r\nSubject: caf\xe9\r\n\r\n")
        assert msg.error == "header bytes are not UTF-8 (byte 0xe9 at offset 66)"
        assert msg.headers["Subject"] == "caf\ufffd"


class TestNotSip:
    def test_data_without_a_sip_start_line_is_rejected(self):
        for data in (b"", b"\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"\x16\x03\x01\x02\x00",
                     b"INVITE sip:h\r\n", b"SIP/two 200 OK\r\n", b"INVITE sip:h SIP/2.0 extra\r\n"):  # fmt: skip
            assert parse_sip(payload(data)) is None, data
