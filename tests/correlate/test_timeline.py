"""How the Correlator groups and releases calls, on small hand-made inputs (real runs:
test_correlate_real.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from kamlog.correlate.attribution import Placed
from kamlog.correlate.timeline import CallTimeline, Correlator
from kamlog.events import LogEvent
from kamlog.sip import SipMessage
from tests.test_dialogs import message

T0 = datetime.fromtimestamp(1_795_860_912, timezone.utc)  # the time tests.test_dialogs.message counts from


def log(text: str, ms: float, call_id: str | None = None, pid: int = 7) -> LogEvent:
    return LogEvent.create(message=text, call_id=call_id, pid=pid, host="vm", timestamp=T0 + timedelta(milliseconds=ms))


def timelines(items: Iterator[CallTimeline | Placed]) -> list[CallTimeline]:
    return [item for item in items if isinstance(item, CallTimeline)]


class TestGrouping:
    def test_legs_that_name_each_other_are_one_timeline_led_by_the_first(self) -> None:
        a = message("INVITE sip:bob@example.com SIP/2.0", "a-leg", "1 INVITE", at=0)
        b = message("INVITE sip:bob@example.com SIP/2.0", "b-leg", "1 INVITE", at=3, extra="X-CID: a-leg\r\n")
        lines = [log("routing ci=b-leg", 4, "b-leg"), log("ci=a-leg", 1, "a-leg")]
        [call] = timelines(Correlator().run([a, b], sorted(lines, key=lambda e: e.timestamp)))
        assert call.call_ids == ["a-leg", "b-leg"]
        assert [p.call_id for p in call.logs] == ["a-leg", "b-leg"]

    def test_a_log_line_of_a_call_the_capture_missed_is_its_own_timeline(self) -> None:
        a = message("OPTIONS sip:p SIP/2.0", "a", "1 OPTIONS", at=0)
        calls = timelines(Correlator().run([a], [log("ci=zzz", 1, "zzz")]))
        assert sorted(c.call_id for c in calls) == ["a", "zzz"]
        assert [c.messages for c in calls if c.call_id == "zzz"] == [[]]

    def test_the_events_of_a_call_come_in_time_with_each_message_before_its_lines(self) -> None:
        invite = message("INVITE sip:bob@example.com SIP/2.0", "c", "1 INVITE", at=10)
        ok = message("SIP/2.0 200 OK", "c", "1 INVITE", at=20, up=False, to_tag=";tag=b")
        lines = [log("got invite ci=c", 10, "c"), log("got 200 ci=c", 21, "c")]
        [call] = timelines(Correlator().run([invite, ok], lines))
        order = [e.method or e.status_code if isinstance(e, SipMessage) else e.event.message for _, _, e in call.events()]
        assert order == ["INVITE", "got invite ci=c", 200, "got 200 ci=c"]


class TestStreaming:
    def test_a_call_is_released_once_the_inputs_are_past_it_by_the_idle_time(self) -> None:
        consumed: list[str] = []

        def messages() -> Iterator[SipMessage]:
            for n in range(40):
                consumed.append(f"c{n}")
                yield message("OPTIONS sip:p SIP/2.0", f"c{n}", "1 OPTIONS", at=n * 1000)

        correlator = Correlator(idle_ns=2_000_000_000, skew_calls=1, check_every=1)
        first = next(item for item in correlator.run(messages(), []) if isinstance(item, CallTimeline))
        assert first.call_id == "c0"
        assert len(consumed) < 40  # released before the input ended
        assert len(correlator.open) < 10  # and what is open stays small

    def test_the_first_calls_are_held_until_the_skew_is_known_then_all_carry_it(self) -> None:
        invites = [message("INVITE sip:bob@example.com SIP/2.0", f"c{n}", "1 INVITE", at=n * 100) for n in range(5)]
        lines = [LogEvent.create(message="x", call_id=f"c{n}", pid=1, host="vm", cseq_num=1, cseq_method="INVITE",
                                 msg_type=1, timestamp=T0 + timedelta(milliseconds=n * 100 + 2.5)) for n in range(5)]
        calls = timelines(Correlator(idle_ns=10**9, skew_calls=3).run(invites, lines))
        assert [c.skew.offset_ns for c in calls] == [2_500_000] * 5
        assert calls[0].skew.pairs >= 3
