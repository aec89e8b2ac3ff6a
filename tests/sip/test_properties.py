"""Properties over generated input: no bytes raise, and what is written is what is read."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kamlog.sip import SipMessage, parse_sip, sip_document

from .messages import payload, sip

START_LINES = st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"\r\nBYE sip:x SIP/2.0\n",
                               b"SIP/2.0 ", b"ACK sip:x SIP/2.0"])  # fmt: skip
HEADERISH = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"Call-ID:", b"i: ", b"CSeq: 1 ", b"v: SIP/2.0/UDP ", b"From: <sip:a>;tag=", b"t:",
                         b"Content-Length: 99", b"l: x", b"c: multipart/mixed;boundary=b", b"--b\r\n",
                         b"Content-Type: application/sdp", b"m=audio 1 RTP/AVP 0", b"c=IN IP4", b"\r\n", b"\n ",
                         b"\r\n\r\n", b";branch=", b",", b'"', b"<", b">", b"\xff", b"P-KSR-SIPDump: x pid=",
                         b"Contact: *", b"X-CID: "]),  # fmt: skip
    ),
    max_size=30,
).map(b"".join)


def read_everything(msg: SipMessage) -> None:
    """Touches every lazy field, as the sinks do."""
    for name in ("error", "uri", "from_", "to", "from_uri", "to_uri", "vias", "contacts", "user_agent", "server",
                 "content_type", "content_length", "max_forwards", "body", "sdp", "sipdump", "link_call_ids",
                 "unregisters", "timestamp", "origin"):  # fmt: skip
        getattr(msg, name)
    list(msg.headers)
    repr(msg)
    sip_document(msg, original=True)


class TestAnyBytes:
    @settings(max_examples=1500, deadline=None)
    @given(st.binary(max_size=400))
    def test_any_bytes_give_a_message_or_none_and_never_raise(self, data):
        msg = parse_sip(payload(data))
        if msg is not None:
            read_everything(msg)

    @settings(max_examples=1500, deadline=None)
    @given(START_LINES, HEADERISH)
    def test_a_start_line_followed_by_any_header_like_bytes_never_raises(self, start, rest):
        msg = parse_sip(payload(start + rest))
        if msg is not None:
            read_everything(msg)


CALL_ID_CHARS = st.sampled_from(list("abcXYZ019-.!%*_+`'~()<>:\\\"/[]?{}@"))
TOKEN = st.text(alphabet=st.sampled_from(list("abcXYZ019-.!%*_+`'~")), min_size=1, max_size=20)


def name_forms(full: str, compact: str | None) -> st.SearchStrategy[str]:
    forms = [full, full.lower(), full.upper()] + ([compact, compact.upper()] if compact else [])
    return st.tuples(st.sampled_from(forms), st.sampled_from(["", " ", "\t"])).map(lambda t: t[0] + t[1])


class TestRoundTrip:
    @settings(max_examples=400, deadline=None)
    @given(
        call_id=st.text(alphabet=CALL_ID_CHARS, min_size=1, max_size=40),
        cseq=st.integers(0, 2**31 - 1),
        method=st.sampled_from(["INVITE", "BYE", "OPTIONS", "PUBLISH", "X-CUSTOM"]),
        from_tag=TOKEN,
        to_tag=st.one_of(st.none(), TOKEN),
        branch=TOKEN,
        names=st.tuples(name_forms("Call-ID", "i"), name_forms("CSeq", None), name_forms("From", "f"),
                        name_forms("To", "t"), name_forms("Via", "v")),  # fmt: skip
        order=st.permutations(range(5)),
        fold=st.booleans(),
        crlf=st.booleans(),
    )
    def test_the_correlation_fields_read_back_as_written_and_agree_with_the_full_parse(
        self, call_id, cseq, method, from_tag, to_tag, branch, names, order, fold, crlf
    ):
        to_params = f";tag={to_tag}" if to_tag else ""
        values = [call_id, f"{cseq} {method}", f'"A" <sip:a@h;tag=uri>;tag={from_tag}', f"<sip:b@h>{to_params}",
                  f"SIP/2.0/UDP h:5060;rport;branch={branch}, SIP/2.0/TCP g;branch=other"]  # fmt: skip
        folded = "\r\n "
        lines = [f"{names[i]}:{folded if fold and i == 0 else ' '}{values[i]}" for i in order]
        text = f"{method} sip:b@h SIP/2.0\r\nMax-Forwards: 70\r\n" + "\r\n".join(lines) + "\r\n\r\n"
        if not crlf:
            text = text.replace("\r\n", "\n")
        msg = sip(text.encode())
        assert (msg.call_id, msg.cseq_num, msg.cseq_method) == (call_id, cseq, method)
        assert (msg.from_tag, msg.to_tag, msg.branch) == (from_tag, to_tag, branch)
        assert msg.error is None
        assert msg.headers["Call-ID"] == msg.call_id
        assert msg.from_ is not None and msg.from_.tag == msg.from_tag
        assert msg.to is not None and msg.to.tag == msg.to_tag
        assert msg.vias[0].branch == msg.branch and len(msg.vias) == 2
        doc = sip_document(msg)
        assert (doc["sip.call_id"], doc["sip.cseq.code"], doc["sip.from.tag"]) == (call_id, cseq, from_tag)


FIELDS = ("version", "method", "request_uri", "status_code", "reason", "call_id", "cseq_num", "cseq_method",
          "from_tag", "to_tag", "branch", "error", "body")


def fields_of(msg: SipMessage | None) -> tuple[object, ...] | None:
    return None if msg is None else tuple(getattr(msg, name) for name in FIELDS)


# Pieces the fast path looks for, so that generated input takes it and leaves it at every step.
FAST_PIECES = st.lists(
    st.one_of(HEADERISH, st.sampled_from([b"\r\nCall-ID: ", b"abc@host", b"\r\n", b"\r\n\r\n", b" ", b"\t",
                                          b"\nCall-ID: \r\n", b"SIP/2.0\r\n", b"\r\n "])),
    max_size=12,
).map(b"".join)
FAST_STARTS = st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"SIP/2.0 180 \r\n",
                               b"SIP/2.0 099 Bad\r\n", b"BYE sip:x  SIP/2.0\r\n", b"OPTIONS  SIP/2.0\r\n",
                               b"ACK sip:x SIP/2.0\n", b"SIP/2.0 200", b"INVITE sip:x SIP/2.0"])  # fmt: skip


class TestFastPath:
    @given(FAST_STARTS, FAST_PIECES)
    def test_the_fast_path_gives_what_the_general_parse_gives_on_any_bytes(self, start, rest):
        from kamlog.sip.message import _parse_any

        p = payload(start + rest)
        assert fields_of(parse_sip(p)) == fields_of(_parse_any(p))

    def test_the_fast_path_gives_what_the_general_parse_gives_on_real_messages(self):
        from kamlog.sip.message import _parse_any

        from .pcap_records import udp_payloads
        from .test_real_captures import EXAMPLE

        payloads = list(udp_payloads(EXAMPLE))
        assert payloads
        for p in payloads:
            assert fields_of(parse_sip(p)) == fields_of(_parse_any(p)) != None  # noqa: E711
