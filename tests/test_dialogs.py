"""How dialogs end and which legs belong together, on small hand-made message sequences (the
common endings are also checked on real Kamailio traffic in tests/test_calls.py)."""

from __future__ import annotations

from kamlog.calls import CallFilter, calls_table
from kamlog.capture.packets import Payload
from kamlog.dialogs import Dialogs
from kamlog.sip import SipMessage, parse_sip

CALLER, PROXY = ("192.0.2.1", 5060), ("192.0.2.2", 5060)


def message(start: str, call_id: str, cseq: str, *, at: int, up: bool = True, extra: str = "",
            to_tag: str = "") -> SipMessage:
    """One message between the caller and the proxy; `at` is its time in milliseconds."""
    src, dst = (CALLER, PROXY) if up else (PROXY, CALLER)
    text = (f"{start}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{cseq.replace(' ', '-')}\r\n"
            f"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>{to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n")
    msg = parse_sip(Payload(text.encode(), 1_795_860_912_000_000_000 + at * 1_000_000, 6, *src, *dst, "udp",
                            "hand.pcap", at))
    assert msg is not None
    return msg


def ending(*messages: SipMessage) -> tuple[str, int | None, str]:
    (dialog,) = Dialogs().extend(messages).by_call_id.values()
    return dialog.state, dialog.final_code, dialog.state_text


class TestStates:
    def test_an_answered_call_without_bye_is_in_call_and_with_bye_completed(self):
        invite = message("INVITE sip:bob@example.com SIP/2.0", "c1", "1 INVITE", at=0)
        ok = message("SIP/2.0 200 OK", "c1", "1 INVITE", at=5, up=False, to_tag=";tag=b1")
        bye = message("BYE sip:bob@example.com SIP/2.0", "c1", "2 BYE", at=900, to_tag=";tag=b1")
        assert ending(invite, ok) == ("IN CALL", 200, "IN CALL")
        assert ending(invite, ok, bye) == ("COMPLETED", 200, "COMPLETED")

    def test_a_call_with_only_provisional_replies_is_in_setup(self):
        invite = message("INVITE sip:bob@example.com SIP/2.0", "c2", "1 INVITE", at=0)
        ringing = message("SIP/2.0 180 Ringing", "c2", "1 INVITE", at=5, up=False)
        assert ending(invite, ringing) == ("CALL SETUP", None, "CALL SETUP")
        assert ending(invite) == ("NO ANSWER", None, "NO ANSWER")

    def test_a_redirect_and_an_unknown_failure_keep_their_codes(self):
        invite = message("INVITE sip:bob@example.com SIP/2.0", "c3", "1 INVITE", at=0)
        moved = message("SIP/2.0 302 Moved Temporarily", "c3", "1 INVITE", at=5, up=False)
        refused = message("SIP/2.0 415 Unsupported Media Type", "c3", "1 INVITE", at=5, up=False)
        assert ending(invite, moved) == ("DIVERTED", 302, "DIVERTED 302")
        assert ending(invite, refused) == ("REJECTED", 415, "REJECTED 415")

    def test_a_failure_after_the_answer_does_not_undo_it(self):
        invite = message("INVITE sip:bob@example.com SIP/2.0", "c4", "1 INVITE", at=0)
        ok = message("SIP/2.0 200 OK", "c4", "1 INVITE", at=5, up=False, to_tag=";tag=b1")
        busy = message("SIP/2.0 486 Busy Here", "c4", "1 INVITE", at=6, up=False, to_tag=";tag=b2")
        assert ending(invite, ok, busy)[:2] == ("IN CALL", 200)

    def test_a_challenged_register_that_then_succeeds_is_registered(self):
        first = message("REGISTER sip:example.com SIP/2.0", "r1", "1 REGISTER", at=0,
                        extra="Contact: <sip:alice@192.0.2.1>\r\n")
        challenge = message("SIP/2.0 401 Unauthorized", "r1", "1 REGISTER", at=2, up=False)
        second = message("REGISTER sip:example.com SIP/2.0", "r1", "2 REGISTER", at=4,
                         extra="Contact: <sip:alice@192.0.2.1>\r\nAuthorization: Digest x\r\n")
        ok = message("SIP/2.0 200 OK", "r1", "2 REGISTER", at=6, up=False)
        assert ending(first, challenge) == ("CHALLENGED", 401, "CHALLENGED 401")
        assert ending(first, challenge, second, ok) == ("REGISTERED", 200, "REGISTERED")

    def test_a_register_whose_contacts_expire_now_unregisters(self):
        bye = message("REGISTER sip:example.com SIP/2.0", "r2", "3 REGISTER", at=0,
                      extra="Contact: <sip:alice@192.0.2.1>;expires=0\r\n")
        ok = message("SIP/2.0 200 OK", "r2", "3 REGISTER", at=2, up=False)
        assert ending(bye, ok) == ("UNREGISTERED", 200, "UNREGISTERED")


class TestLinkedLegs:
    def test_a_leg_that_names_another_in_x_cid_is_listed_under_it(self):
        a_leg = message("INVITE sip:bob@example.com SIP/2.0", "a-leg", "1 INVITE", at=0)
        b_leg = message("INVITE sip:bob@example.com SIP/2.0", "b-leg", "1 INVITE", at=3, extra="X-CID: a-leg\r\n")
        other = message("OPTIONS sip:example.com SIP/2.0", "ping", "1 OPTIONS", at=1)
        groups = list(Dialogs().extend([a_leg, other, b_leg]).linked())
        assert [[d.call_id for d in g] for g in groups] == [["a-leg", "b-leg"], ["ping"]]
        assert groups[0][0].linked_call_ids == {"b-leg"} and groups[0][1].linked_call_ids == {"a-leg"}
        table = list(calls_table(groups))
        assert "  a-leg  " in table[1] and "  └ b-leg  " in table[2]

    def test_choosing_one_leg_by_call_id_shows_the_whole_call(self):
        a_leg = message("INVITE sip:bob@example.com SIP/2.0", "a-leg", "1 INVITE", at=0)
        b_leg = message("INVITE sip:bob@example.com SIP/2.0", "b-leg", "1 INVITE", at=3, extra="X-Call-ID: a-leg\r\n")
        keep = CallFilter.build(call_ids=["b-leg"])
        groups = list(keep.groups(Dialogs().extend([a_leg, b_leg]).linked()))
        assert [[d.call_id for d in g] for g in groups] == [["a-leg", "b-leg"]]
