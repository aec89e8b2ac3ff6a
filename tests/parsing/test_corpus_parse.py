"""Every log form of a real Kamailio run (the corpus fixture) parses completely and correctly."""

from __future__ import annotations

import json
import re
from datetime import timezone
from pathlib import Path

import pytest

from kamlog.correlate.clock import Clock
from kamlog.parsing.detect import detect
from kamlog.parsing.grammar import all_grammars, get_grammar
from kamlog.parsing.logline import LineParser
from kamlog.sinks.ecs import log_event
from tests.cli_helpers import kamlog

FORMS = {
    "stderr.log": "kamailio-stderr",
    "stderr-color.log": "kamailio-stderr",
    "json.log": "kamailio-json",
    "json-c.log": "kamailio-json",
    "json-a.log": "kamailio-json",
    "json-ac.log": "kamailio-json",
    "json-U.log": "kamailio-json",
    "syslog-traditional.log": "kamailio-syslog",
    "syslog-rfc3339.log": "kamailio-syslog-rfc3339",
    "syslog-rfc5424.log": "kamailio-syslog-rfc5424",
    "syslog-json-traditional.log": "kamailio-syslog",
    "syslog-json-rfc3339.log": "kamailio-syslog-rfc3339",
    "syslog-json-U-rfc3339.log": "kamailio-syslog-rfc3339",
    "journal.json": "journald-json",
}
# The CEE flavour of the JSON engine carries neither prefix nor Call-ID member.
WITHOUT_PREFIX = {"json-U.log", "syslog-json-U-rfc3339.log"}


def parse(path: Path):
    parser = LineParser(get_grammar(FORMS[path.name]), str(path), clock=Clock(year=2026, zone=timezone.utc))
    data = path.read_bytes()
    events = []
    offset = 0
    while offset < len(data):  # 64 KiB blocks of whole lines, as the tailer delivers them
        cut = data.rfind(b"\n", offset, offset + (1 << 16)) + 1 or len(data)
        events += parser.feed(data[offset:cut], offset)
        offset = cut
    return events + parser.flush(), parser.stats


@pytest.fixture(scope="module")
def manifest(corpus: Path) -> dict:
    return json.loads((corpus / "manifest.json").read_text())


@pytest.mark.realworld
@pytest.mark.parametrize("name", sorted(FORMS))
class TestEveryForm:
    def test_its_grammar_is_detected(self, corpus, name):
        assert detect((corpus / name).read_bytes(), all_grammars()).name == FORMS[name]

    def test_every_line_is_accounted_for_and_none_is_unparsed(self, corpus, name):
        events, stats = parse(corpus / name)
        assert stats.unparsed == 0, [e.message for e in events if e.error][:3]
        assert stats.records == len(events) > 1000
        assert stats.records + stats.continuation_lines + stats.blank + stats.other_program == stats.lines

    def test_every_kamailio_level_appears(self, corpus, name):
        events, _ = parse(corpus / name)
        assert {e.level_no for e in events} == set(range(-5, 4))

    def test_every_scenarios_call_id_is_found(self, corpus, manifest, name):
        events, _ = parse(corpus / name)
        found = {e.call_id for e in events}
        assert {s["call_id"] for s in manifest["scenarios"]} <= found

    def test_the_prefix_gives_cseq_and_method(self, corpus, name):
        if name in WITHOUT_PREFIX:
            pytest.skip("the CEE flavour has no log_prefix")
        events, _ = parse(corpus / name)
        invites = [e for e in events if e.call_id == "call-busy-1@kamlog.test" and e.cseq_method == "INVITE"]
        assert invites and all(e.cseq_num == 1 and e.log_prefix for e in invites)

    def test_the_sip_message_dump_is_one_record(self, corpus, name):
        events, _ = parse(corpus / name)
        dumps = [e for e in events if e.message.startswith("SIP message dump ci=call-completed-1@kamlog.test")]
        assert len(dumps) == 1
        assert "\r\nCall-ID: call-completed-1@kamlog.test\r\n" in dumps[0].message
        # journald strips the message's final CRLF; the other forms keep it.
        assert dumps[0].message.rstrip("\r\n").endswith("a=rtpmap:0 PCMU/8000")

    def test_offsets_point_at_each_records_first_byte(self, corpus, name):
        path = corpus / name
        data = path.read_bytes()
        events, _ = parse(path)
        for event in events[:: max(1, len(events) // 200)]:
            assert event.offset == 0 or data[event.offset - 1 : event.offset] == b"\n"
            line = data[event.offset :].split(b"\n", 1)[0].decode("utf-8", "replace")
            if '"MESSAGE":[' in line:
                continue  # journald wrote this message as an array of byte values
            # The message's start, up to the first character a format may escape.
            first = re.split(r'[\r\n"\\#]', event.message)[0][:30]
            assert first in line, (line, first)

    def test_json_output_is_valid_ecs(self, corpus, name):
        events, _ = parse(corpus / name)
        for event in events[:500]:
            doc = log_event(event)
            assert doc["event.dataset"] == "kamailio.log" and "kamailio.level" in doc
            json.dumps(doc)


@pytest.mark.realworld
class TestCliOnTheCorpus:
    def test_kamlog_tail_reads_a_whole_real_syslog_file(self, corpus):
        path = corpus / "syslog-traditional.log"
        result = kamlog("tail", "--no-follow", "-n", "all", "--format", "json", str(path), timeout=300)
        docs = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(docs) == path.read_bytes().count(b"\n")
        assert "matched no pattern" not in result.stderr

    def test_kamlog_tail_shows_one_calls_errors_from_stderr_output(self, corpus):
        result = kamlog("tail", "--no-follow", "-n", "all", "--level", "ERR", "-c", "call-unknown-1@kamlog.test",
                        str(corpus / "stderr.log"))
        lines = result.stdout.splitlines()
        assert lines and all("{1 INVITE call-unknown-1@kamlog.test}" in line for line in lines)
        assert any("user nobody not found, replying 404" in line for line in lines)
