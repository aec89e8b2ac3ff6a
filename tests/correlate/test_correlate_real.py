"""`kamlog correlate` on the corpus: real Kamailio logs in every form beside the real captures
of the same runs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from kamlog.correlate.inputs import LogReader
from kamlog.parsing.callid import DEFAULT_PREFIX
from kamlog.parsing.options import ParseOptions
from kamlog.sources.pcap import CaptureReader
from tests.cli_helpers import kamlog
from tests.test_calls import EXPECTED

#: Each log form of the corpus and the capture of the same run.
PAIRS = {
    "syslog-rfc3339.log": "capture.pcap",
    "syslog-traditional.log": "capture.pcap",
    "syslog-rfc5424.log": "capture.pcap",
    "syslog-json-rfc3339.log": "capture-syslog-json.pcap",
    "journal.json": "capture-journal.pcap",
    "stderr.log": "capture-stderr.pcap",
    "json.log": "capture-json.pcap",
    "tcp.log": "capture-tcp.pcap",
}
#: Forms whose records carry a time precise to the microsecond.
PRECISE = {"syslog-rfc3339.log", "syslog-rfc5424.log", "syslog-json-rfc3339.log", "journal.json"}
UNTIMED = {"stderr.log", "json.log", "tcp.log"}


def correlate_json(*args: str) -> list[dict[str, Any]]:
    done = kamlog("correlate", "--format", "json", *args, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module", params=sorted(PAIRS))
def form(request: pytest.FixtureRequest, corpus: Path) -> tuple[str, Path, Path, list[dict[str, Any]]]:
    log, capture = corpus / request.param, corpus / PAIRS[request.param]
    return request.param, log, capture, correlate_json("--pcap", str(capture), "--log", str(log))


class TestEveryForm:
    def test_every_log_record_and_every_sip_message_is_written_once(self, form) -> None:
        _, log, capture, docs = form
        datasets = Counter(d["event.dataset"] for d in docs)
        assert datasets["kamailio.log"] == sum(1 for _ in LogReader([str(log)], ParseOptions()))
        assert datasets["kamailio.sip"] == sum(1 for _ in CaptureReader([str(capture)]).messages())
        offsets = [(d["log.file.path"], d["log.offset"]) for d in docs if d["event.dataset"] == "kamailio.log"]
        assert len(set(offsets)) == len(offsets)

    def test_every_scenario_is_a_call_with_its_messages_and_log_lines(self, form) -> None:
        _, _, _, docs = form
        by_call: dict[str | None, Counter[str]] = defaultdict(Counter)
        for d in docs:
            by_call[d["kamlog.call"]][d["event.dataset"]] += 1
        for call_id in EXPECTED:
            assert by_call[call_id]["kamailio.sip"] >= 2, call_id
            assert by_call[call_id]["kamailio.log"] >= 2, call_id

    def test_a_line_with_the_default_prefix_is_on_the_call_the_prefix_names(self, form) -> None:
        _, _, _, docs = form
        checked = 0
        for d in docs:
            prefix = d.get("kamailio.log_prefix")
            found = DEFAULT_PREFIX.search(prefix) if prefix else None
            if found:
                assert (d["sip.call_id"], d["kamlog.attribution"]) == (found["call_id"], "call_id")
                checked += 1
        assert checked > 100

    def test_a_line_placed_by_process_leads_to_a_line_of_the_same_call_in_that_process(self, form) -> None:
        """Kamailio parses a message's headers before it sets log_prefix (and the JSON engine's
        callid): those lines carry no Call-ID, and the lines that follow in the same process
        while it handles the message say whose they are."""
        _, _, _, docs = form
        logs = sorted((d for d in docs if d["event.dataset"] == "kamailio.log"), key=lambda d: d["log.offset"])
        next_named: dict[int, str] = {}
        checked = 0
        for d in reversed(logs):
            pid = d.get("process.pid")
            if pid is None:
                continue
            if d["kamlog.attribution"] == "call_id":  # the prefix's or the JSON engine's Call-ID
                next_named[pid] = d["sip.call_id"]
            elif d["kamlog.attribution"] == "process" and next_named.get(pid) is not None:
                assert d["sip.call_id"] == next_named[pid], d
                checked += 1
            if d["message"].startswith("--- received sip message"):
                next_named.pop(pid, None)  # what comes before is another message's
        assert checked > 5

    def test_the_clock_skew_is_found_and_small(self, form) -> None:
        name, _, _, docs = form
        logs = [d for d in docs if d["event.dataset"] == "kamailio.log" and d["kamlog.call"]]
        shifts = {_ns(d["kamlog.original_timestamp"]) - _ns(d["@timestamp"])
                  for d in logs if d["kamlog.original_timestamp"]}
        if name in UNTIMED:
            assert shifts == set()
            return
        [shift] = shifts
        # The log clock is this machine's, as is the capture's: the skew is the time a line
        # takes to be written (and, for syslog, to reach rsyslog), or the cut to whole seconds.
        assert 0 <= shift < (1_100_000_000 if name not in PRECISE else 50_000_000)

    def test_each_calls_events_come_in_time_order(self, form) -> None:
        name, _, _, docs = form
        if name not in PRECISE:
            pytest.skip("whole-second or untimed lines are ordered by their message, not their time")
        by_call: dict[str, list[int]] = defaultdict(list)
        for d in docs:
            if d["kamlog.call"]:
                by_call[d["kamlog.call"]].append(_ns(d["@timestamp"]))
        for times in by_call.values():
            assert times == sorted(times)

    def test_log_offsets_point_at_the_records_first_byte(self, form) -> None:
        name, log, _, docs = form
        data = log.read_bytes()
        for d in docs:
            if d["event.dataset"] == "kamailio.log" and d["kamlog.attribution"] != "unattributed":
                offset = d["log.offset"]
                assert offset == 0 or data[offset - 1] == ord("\n")
                if "json" in name:
                    continue  # the message is JSON-escaped there
                start = data[offset:data.find(b"\n", offset)].decode("utf-8", "replace")
                assert d["message"].split("\n", 1)[0][:40].strip() in start


class TestOtherCaptures:
    @pytest.mark.parametrize("capture", ["capture-any.pcap", "capture.pcapng", "sipdump-1.pcap"])
    def test_the_same_run_seen_by_another_capture_gives_the_same_calls(self, corpus: Path, capture: str) -> None:
        log = str(corpus / "syslog-rfc3339.log")
        first = correlate_json("--pcap", str(corpus / "capture.pcap"), "--log", log)
        other = correlate_json(str(corpus / capture), log)
        def calls(docs: list[dict[str, Any]]) -> Counter[str | None]:
            return Counter(d["kamlog.call"] for d in docs if d["event.dataset"] == "kamailio.log")
        assert calls(other) == calls(first)


class TestText:
    def test_a_call_is_a_header_then_a_ladder_with_its_log_lines(self, corpus: Path) -> None:
        done = kamlog("correlate", str(corpus / "capture.pcap"), str(corpus / "syslog-rfc3339.log"),
                      "--call-id", "call-busy-1@kamlog.test", "--level", "INFO")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "Call call-busy-1@kamlog.test"
        assert lines[1] == "  sip:caller@kamlog.test -> sip:busy@kamlog.test"
        assert ", BUSY 486, 7 SIP messages, " in lines[2]
        ladder = "\n".join(lines)
        assert "─── INVITE ───" in ladder and "486 Busy Here" in ladder and "DEBUG" not in ladder
        assert lines[-1].startswith("1 of 9 calls shown; 57 SIP messages; ")

    def test_a_call_id_in_no_input_is_said(self, corpus: Path) -> None:
        done = kamlog("correlate", str(corpus / "capture.pcap"), str(corpus / "syslog-rfc3339.log"), "-c", "nope")
        assert done.returncode == 0
        assert "kamlog: no call with the Call-ID nope in the inputs" in done.stderr


def _ns(text: str) -> int:
    from datetime import datetime

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
