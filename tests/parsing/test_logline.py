"""Edge cases of the parsing stage, on small hand-made inputs in Kamailio's real formats."""

from datetime import datetime, timezone

import pytest

from kamlog.correlate.clock import Clock
from kamlog.parsing.callid import CallIdFinder
from kamlog.parsing.grammar import get_grammar
from kamlog.parsing.logline import LineParser
from kamlog.parsing.options import ParseOptions

UTC = timezone.utc
SYSLOG = (
    "Nov 28 09:40:01 vm kamailio[3159]: ERROR: {1 1 INVITE 1-3163@127.0.0.1} tm [t_lookup.c:1234]: "
    "t_reply(): no transaction\n"
)


def parser(grammar: str, **kw) -> LineParser:
    kw.setdefault("clock", Clock(year=2026, zone=UTC))
    return LineParser(get_grammar(grammar), "test.log", **kw)


def parse(grammar: str, data: bytes, **kw):
    p = parser(grammar, **kw)
    events = [*p.feed(data, 0), *p.flush()]
    return events, p.stats


def accounted(stats) -> int:
    return stats.records + stats.unparsed + stats.continuation_lines + stats.other_program + stats.blank


class TestSyslogTraditional:
    def test_every_field_of_a_default_prefix_line_is_decoded(self):
        [event], stats = parse("kamailio-syslog", SYSLOG.encode())
        assert event.as_dict() == {
            "timestamp": datetime(2026, 11, 28, 9, 40, 1, tzinfo=UTC),
            "host": "vm", "program": "kamailio", "pid": 3159, "process_no": None,
            "level": "ERROR", "level_no": -1, "module": "tm", "src_file": "t_lookup.c", "src_line": 1234,
            "function": "t_reply", "log_prefix": "{1 1 INVITE 1-3163@127.0.0.1} ", "message": "no transaction",
            "call_id": "1-3163@127.0.0.1", "cseq_num": 1, "cseq_method": "INVITE", "msg_type": 1, "error": None,
            "path": "test.log", "offset": 0, "grammar": "kamailio-syslog",
        }
        assert stats.records == 1 and stats.lines == 1

    def test_rsyslog_escapes_become_newlines_in_one_record(self):
        line = "Nov 28 09:40:01 vm kamailio[3159]: DEBUG: <script>: INVITE sip:bob@x SIP/2.0#015#012Via: a#015#012\n"
        [event], _ = parse("kamailio-syslog", line.encode())
        assert event.message == "INVITE sip:bob@x SIP/2.0\r\nVia: a\r\n"

    def test_lines_of_other_programs_are_skipped_and_counted(self):
        data = ("Nov 28 09:40:00 vm CRON[99]: (root) CMD (true)\n" + SYSLOG).encode()
        events, stats = parse("kamailio-syslog", data)
        assert [e.program for e in events] == ["kamailio"]
        assert stats.other_program == 1 and accounted(stats) == stats.lines == 2

    def test_program_names_given_by_the_user_replace_the_default(self):
        data = SYSLOG.replace("kamailio[", "sbc[").encode()
        assert parse("kamailio-syslog", data)[0] == []
        options = ParseOptions(programs=("sbc",))
        p = options.parser(get_grammar("kamailio-syslog", options.overrides()), "test.log")
        [event] = list(p.feed(data + SYSLOG.encode(), 0))
        assert event.program == "sbc" and p.stats.other_program == 1

    def test_a_tag_without_pid_written_before_openlog_is_parsed(self):
        [event], _ = parse("kamailio-syslog", b"Nov 28 09:40:01 vm kamailio: INFO: <core> [main.c:1]: main(): hi\n")
        assert (event.program, event.pid, event.message) == ("kamailio", None, "hi")

    def test_a_december_line_in_a_file_written_in_january_is_from_the_year_before(self):
        clock = Clock(zone=UTC, reference=datetime(2027, 1, 2, tzinfo=UTC))
        [event], _ = parse("kamailio-syslog", SYSLOG.replace("Nov 28", "Dec 31").encode(), clock=clock)
        assert event.timestamp == datetime(2026, 12, 31, 9, 40, 1, tzinfo=UTC)


class TestHostileInput:
    def test_invalid_utf8_is_replaced_and_offsets_stay_in_bytes(self):
        bad = SYSLOG.replace("no transaction", "caf\xe9").encode("latin-1")
        events, stats = parse("kamailio-syslog", bad + SYSLOG.encode())
        assert events[0].message == "caf\ufffd"
        assert events[1].offset == len(bad)
        assert stats.records == 2

    def test_nul_bytes_stay_in_the_message(self):
        [event], _ = parse("kamailio-syslog", SYSLOG.replace("no transaction", "a\0b").encode())
        assert event.message == "a\0b"

    def test_a_one_megabyte_line_is_one_record(self):
        big = "x" * (1 << 20)
        [event], _ = parse("kamailio-syslog", SYSLOG.replace("no transaction", big).encode())
        assert event.message == big

    def test_garbage_is_kept_raw_with_an_error_and_counted(self):
        data = b"\x00\xff garbage\n" + SYSLOG.encode() + b"}{][\n"
        events, stats = parse("kamailio-syslog", data)
        assert [e.error is None for e in events] == [False, True, False]
        assert events[0].message == "\x00\ufffd garbage"
        assert events[0].error == "the line matches no pattern of grammar kamailio-syslog"
        assert stats.unparsed == 2 and accounted(stats) == stats.lines == 3

    def test_a_truncated_last_line_without_newline_is_parsed(self):
        events, _ = parse("kamailio-syslog", (SYSLOG + SYSLOG.rstrip("\n")).encode())
        assert len(events) == 2 and events[1].message == "no transaction"

    def test_json_with_an_unescaped_quote_in_the_callid_is_parsed_leniently(self):
        line = (
            '{ "idx": 1, "pid": 3251, "level": "ERROR", "module": "xlog", "file": "xlog.c", "line": 282, '
            '"function": "", "callid": "q"uote@host", "logprefix": "{1 1 INVITE q"uote@host} ", '
            '"message": "err line\\n" }\n'
        )
        [event], stats = parse("kamailio-json", line.encode())
        assert (event.call_id, event.message, event.level_no, event.error) == ('q"uote@host', "err line", -1, None)
        assert event.log_prefix == '{1 1 INVITE q"uote@host} '

    def test_kamailios_fake_call_id_means_none(self):
        line = SYSLOG.replace("{1 1 INVITE 1-3163@127.0.0.1} ", "{1 1 OPTIONS aaa-bbb-ccc-ddd} ")
        [event], _ = parse("kamailio-syslog", line.encode())
        assert event.call_id is None and event.cseq_method == "OPTIONS"


class TestStderrContinuation:
    DUMP = (
        b" 1(3160) DEBUG: {1 1 INVITE c@h} <script>: message:\n"
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
        b"Call-ID: c@h\r\n"
        b"\r\n"
        b" 2(3161) INFO: <core> [core/main.c:1]: main(): next\n"
    )

    def test_bare_lines_continue_the_record_before_them(self):
        events, stats = parse("kamailio-stderr", self.DUMP)
        assert [e.process_no for e in events] == [1, 2]
        assert events[0].message == "message:\nINVITE sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: c@h\r\n\r"
        assert events[1].offset == self.DUMP.index(b" 2(3161)")
        assert stats.continuation_lines == 3 and accounted(stats) == stats.lines == 5

    def test_a_record_split_across_two_blocks_is_joined(self):
        p = parser("kamailio-stderr")
        cut = self.DUMP.index(b"Call-ID")
        events = [*p.feed(self.DUMP[:cut], 0), *p.feed(self.DUMP[cut:], cut), *p.flush()]
        assert [e.process_no for e in events] == [1, 2]
        assert "Call-ID: c@h" in events[0].message

    def test_colour_codes_of_kamailio_e_are_not_part_of_the_fields(self):
        data = b"\x1b[0;39;49m\x1b[0;31;49m 0(3770) ERROR: <script>: err\n\x1b[0;39;49m"
        [event], stats = parse("kamailio-stderr", data)
        assert (event.level, event.message, event.pid) == ("ERROR", "err", 3770)
        assert stats.blank == 1


class TestCallIdFinder:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("alert ci=abc@h", "abc@h"),
            ("reply for Call-ID: x@y more", "x@y"),
            ("ID=zz; done", "zz"),
            ("--- received sip message - request - call-id: [1-3@127.0.0.1] - cseq: [1 INVITE]", "1-3@127.0.0.1"),
            ("callid: '658f36222fd37d77-3160@127.0.0.1'", None),
            ("dialog id=5", None),
        ],
    )
    def test_finds_the_call_id_in_common_xlog_texts(self, text, expected):
        assert CallIdFinder.in_text(text) == expected

    def test_a_users_own_prefix_pattern_is_tried_first(self):
        finder = CallIdFinder(r"\[(?P<cseq_method>[A-Z]+) (?P<call_id>\S+)\]")
        fields = finder.prefix_fields("[INVITE abc@h] ")
        assert (fields.call_id, fields.cseq_method, fields.cseq_num) == ("abc@h", "INVITE", None)


class TestWholeBlocks:
    def test_a_block_of_records_only_is_parsed_in_one_pass_with_exact_offsets(self):
        data = (SYSLOG * 3).encode()
        p = parser("kamailio-syslog")
        events = list(p.feed(data, 1000))
        assert [e.offset for e in events] == [1000, 1000 + len(SYSLOG), 1000 + 2 * len(SYSLOG)]
        assert events[2].message == "no transaction" and p.stats.records == p.stats.lines == 3

    def test_a_block_with_one_line_of_another_kind_falls_back_to_line_by_line(self):
        data = (SYSLOG + "Nov 28 09:40:00 vm CRON[99]: (root) CMD (true)\n" + SYSLOG).encode()
        events, stats = parse("kamailio-syslog", data)
        assert [e.offset for e in events] == [0, len(data) - len(SYSLOG)]
        assert (stats.records, stats.other_program, stats.lines) == (2, 1, 3)

    def test_detached_events_keep_their_values_without_the_blocks_text(self):
        [event] = list(parser("kamailio-syslog").feed(SYSLOG.encode(), 7))
        detached = event.detached()
        assert detached == event and detached.offset == 7 and isinstance(detached[0], tuple)
