"""How log records are put on calls: edge cases by hand (real logs: test_correlate_real.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kamlog.correlate.attribution import CALL_ID, PROCESS, UNATTRIBUTED, Attributor, Placed, place_all
from kamlog.events import LogEvent

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)


def line(message: str, pid: int | None = 100, ms: float = 0.0, call_id: str | None = None,
         function: str | None = None, host: str = "vm", timed: bool = True) -> LogEvent:
    return LogEvent.create(message=message, pid=pid, host=host, call_id=call_id, function=function,
                           timestamp=T0 + timedelta(milliseconds=ms) if timed else None, module="core")


def received(call_id: str, pid: int = 100, ms: float = 0.0, kind: str = "request", cseq: str = "1 INVITE") -> LogEvent:
    # The text Kamailio 5.6's core writes at debug 3 (core/receive.c); kamlog finds the
    # Call-ID in it as in any `call-id: [X]` text.
    return line(f"--- received sip message - {kind} - call-id: [{call_id}] - cseq: [{cseq}]", pid, ms,
                call_id=call_id, function="receive_msg")


def cleaning_up(pid: int = 100, ms: float = 0.0, call_id: str | None = None) -> LogEvent:
    return line("cleaning up", pid, ms, call_id=call_id, function="receive_msg")


def placed(events: list[LogEvent]) -> list[tuple[str, str | None, str]]:
    return [(p.event.message, p.call_id, p.how) for p in sorted(place_all(events), key=lambda p: p.seq)]


class TestMarkedWindows:
    def test_lines_between_the_cores_markers_go_to_the_received_messages_call(self) -> None:
        out = placed([received("A", ms=0), line("parsed header name [Via]", ms=1), cleaning_up(ms=2)])
        assert out == [
            ("--- received sip message - request - call-id: [A] - cseq: [1 INVITE]", "A", CALL_ID),
            ("parsed header name [Via]", "A", PROCESS),
            ("cleaning up", "A", PROCESS),
        ]

    def test_a_line_after_cleaning_up_is_unattributed(self) -> None:
        out = placed([received("A"), cleaning_up(ms=1), line("timer tick", ms=2)])
        assert out[-1] == ("timer tick", None, UNATTRIBUTED)

    def test_each_process_has_its_own_window(self) -> None:
        out = placed([received("A", pid=1), received("B", pid=2), line("one", pid=1, ms=1), line("two", pid=2, ms=1)])
        assert ("one", "A", PROCESS) in out and ("two", "B", PROCESS) in out

    def test_the_same_pid_on_two_hosts_is_two_processes(self) -> None:
        events = [received("A", pid=7), line("elsewhere", pid=7, host="other", ms=1)]
        assert placed(events)[-1] == ("elsewhere", None, UNATTRIBUTED)

    def test_the_received_marker_gives_the_message_key(self) -> None:
        [opener, inside] = sorted(place_all([received("A", kind="reply", cseq="2 BYE"), line("x", ms=1)]),
                                  key=lambda p: p.seq)
        assert opener.key == (2, 2, "BYE") and inside.key == (2, 2, "BYE")

    def test_a_line_naming_another_call_inside_a_window_does_not_end_it(self) -> None:
        out = placed([received("A"), line("about B", call_id="B", ms=1), line("more", ms=2)])
        assert out[1] == ("about B", "B", CALL_ID) and out[2] == ("more", "A", PROCESS)

    def test_a_cleaning_up_line_that_names_its_call_still_ends_the_window(self) -> None:
        out = placed([received("A"), cleaning_up(ms=1, call_id="A"), line("signal 15 received", ms=2)])
        assert out[-1] == ("signal 15 received", None, UNATTRIBUTED)


class TestWithoutMarkers:
    def test_a_line_between_two_lines_of_the_same_call_goes_to_that_call(self) -> None:
        out = placed([line("start ci=A", call_id="A"), line("no id", ms=5), line("end ci=A", call_id="A", ms=9)])
        assert out[1] == ("no id", "A", PROCESS)

    def test_a_line_between_two_different_calls_stays_unattributed(self) -> None:
        out = placed([line("ci=A", call_id="A"), line("whose?", ms=5), line("ci=B", call_id="B", ms=9)])
        assert out[1] == ("whose?", None, UNATTRIBUTED)

    def test_a_line_between_two_lines_of_a_call_far_apart_in_time_stays_unattributed(self) -> None:
        out = placed([line("ci=A", call_id="A"), line("whose?", ms=500), line("ci=A", call_id="A", ms=1500)])
        assert out[1] == ("whose?", None, UNATTRIBUTED)

    def test_lines_without_time_between_two_lines_of_a_call_go_to_it(self) -> None:
        events = [line("ci=A", call_id="A", timed=False), line("x", timed=False), line("ci=A", call_id="A", timed=False)]
        assert placed(events)[1] == ("x", "A", PROCESS)

    def test_a_line_after_the_last_named_line_stays_unattributed_at_the_end(self) -> None:
        assert placed([line("ci=A", call_id="A"), line("trailing", ms=1)])[-1] == ("trailing", None, UNATTRIBUTED)

    def test_a_line_of_a_record_without_a_process_is_unattributed(self) -> None:
        out = placed([line("ci=A", call_id="A", pid=None), line("x", pid=None), line("ci=A", call_id="A", pid=None)])
        assert out[1] == ("x", None, UNATTRIBUTED)

    def test_the_undecided_lines_of_a_process_are_bounded(self) -> None:
        attributor = Attributor(max_pending=3)
        out: list[Placed] = list(attributor.feed(line("ci=A", call_id="A")))
        for n in range(5):
            out.extend(attributor.feed(line(f"x{n}", ms=n)))
        assert [p.how for p in out] == [CALL_ID, UNATTRIBUTED, UNATTRIBUTED, UNATTRIBUTED, UNATTRIBUTED]
        assert len(attributor.finish()) == 1

    def test_every_line_is_counted_once(self) -> None:
        attributor = Attributor()
        events = [received("A"), line("a"), cleaning_up(), line("ci=B", call_id="B"), line("b"), line("ci=C", call_id="C")]
        placed_now = [p for e in events for p in attributor.feed(e)] + attributor.finish()
        assert len(placed_now) == len(events) == sum(attributor.counts.values())


class TestPrelude:
    def test_the_lines_that_read_and_parse_a_message_go_to_the_call_the_core_then_names(self) -> None:
        out = placed([
            line("received on udp socket: (112/100/346) [[REGISTER sip:x SIP/2.0 ...]]", function="udp_rcv_loop"),
            line("first line type 1 (request) flags 1", ms=1, function="parse_first_line"),
            line("Found param type 232, <branch> = <z9hG4bK-1>", ms=2, function="parse_via_param"),
            received("A", ms=3),
        ])
        assert [(call_id, how) for _, call_id, how in out] == [("A", PROCESS)] * 3 + [("A", CALL_ID)]

    def test_a_prelude_that_no_marker_names_stays_unattributed(self) -> None:
        out = placed([line("received on udp socket", function="udp_rcv_loop"),
                      line("bad message", ms=1, call_id="B")])
        assert out[0] == ("received on udp socket", None, UNATTRIBUTED)

    def test_a_line_outside_any_message_does_not_start_a_prelude(self) -> None:
        out = placed([line("timer tick", function="rtimer_exec"), received("A", ms=1)])
        assert out[0] == ("timer tick", None, UNATTRIBUTED)

    def test_a_new_datagram_ends_what_the_worker_held_before(self) -> None:
        """A message Kamailio could not parse is never named: its lines must not go to the
        next message's call, nor lines after a window whose `cleaning up` never came."""
        out = placed([
            line("received on udp socket: [[garbage]]", function="udp_rcv_loop"),
            line("bad first line", ms=1, function="parse_first_line"),
            line("received on udp socket: [[INVITE ...]]", ms=2, function="udp_rcv_loop"),
            received("A", ms=3),
            line("in A", ms=4),
            line("received on udp socket: [[BYE ...]]", ms=5, function="udp_rcv_loop"),
            received("B", ms=6),
        ])
        assert [(m, c) for m, c, _ in out] == [
            ("received on udp socket: [[garbage]]", None), ("bad first line", None),
            ("received on udp socket: [[INVITE ...]]", "A"), (out[3][0], "A"), ("in A", "A"),
            ("received on udp socket: [[BYE ...]]", "B"), (out[6][0], "B"),
        ]


class TestInterleavedWorkers:
    """Any interleaving of several workers' debug=3 windows, as syslog writes them: every line
    goes to the call its worker was handling, whatever the other workers wrote meanwhile."""

    def test_every_line_of_every_window_goes_to_its_call(self) -> None:
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=200, deadline=None)
        @given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 5)), min_size=1, max_size=30), st.randoms())
        def check(windows: list[tuple[int, int]], rnd) -> None:
            # One window per (pid, lines inside): the worker's lines in order; the workers' lines
            # then merged in a random order that keeps each worker's own order.
            per_pid: dict[int, list[tuple[LogEvent, str]]] = {}
            for n, (pid, inside) in enumerate(windows):
                call = f"call-{n}"
                lines = [(line("received on udp socket", pid, function="udp_rcv_loop"), call),
                         (received(call, pid), call)]
                lines += [(line(f"work {k}", pid), call) for k in range(inside)]
                lines.append((cleaning_up(pid), call))
                per_pid.setdefault(pid, []).extend(lines)
            queues = [list(reversed(v)) for v in per_pid.values()]
            merged: list[tuple[LogEvent, str]] = []
            while any(queues):
                queue = rnd.choice([q for q in queues if q])
                merged.append(queue.pop())
            truth = {id(e): call for e, call in merged}
            attributor = Attributor()
            got: dict[int, str | None] = {}
            for event, call in merged:
                for p in attributor.feed(event):
                    got[p.seq] = p.call_id
            for p in attributor.finish():
                got[p.seq] = p.call_id
            assert [got[n + 1] for n in range(len(merged))] == [truth[id(e)] for e, _ in merged]

        check()
