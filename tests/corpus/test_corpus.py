"""The corpus is real and complete: every form, level, trap, scenario and packet is there."""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.corpus.generate import (
    EXAMPLES, FORMS, GOLDEN_INPUTS, GRAMMAR_SAMPLES, JOURNAL_FILES, LEVEL_NAMES, SCENARIOS,
)

pytestmark = pytest.mark.realworld

TEXT_LOGS = ["stderr.log", "stderr-color.log", "syslog-traditional.log", "syslog-rfc3339.log",
             "syslog-rfc5424.log"]
JSON_LOGS = ["json.log", "json-c.log", "json-a.log", "json-ac.log", "json-U.log",
             "syslog-json-rfc3339.log", "syslog-json-traditional.log", "syslog-json-U-rfc3339.log"]
ALL_LOGS = TEXT_LOGS + JSON_LOGS + ["journal.json"]
RSYSLOG_LOGS = [n for n in TEXT_LOGS + JSON_LOGS if n.startswith("syslog-")]
PREFIXED_LOGS = [n for n in ALL_LOGS if "-U" not in n]  # the CEE engine (json:U) drops the prefix
CAPTURES = [f"capture-{f.name}.pcap" for f in FORMS] + ["capture.pcap"]

#: per scenario: SIP methods and status codes the capture must hold for its Call-ID
EXPECTED_SIP: dict[str, tuple[set[str], set[int]]] = {
    "register-answer": ({"REGISTER"}, {200}),
    "register-busy": ({"REGISTER"}, {200}),
    "register-ring": ({"REGISTER"}, {200}),
    "options": ({"OPTIONS"}, {200}),
    "call-completed": ({"INVITE", "ACK", "BYE"}, {100, 180, 200}),
    "call-busy": ({"INVITE", "ACK"}, {100, 486}),
    "call-unknown": ({"INVITE", "ACK"}, {404}),
    "call-cancelled": ({"INVITE", "CANCEL", "ACK"}, {100, 180, 200, 487}),
    "call-quoted-callid": ({"INVITE", "ACK", "BYE"}, {100, 180, 200}),
}


def json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((corpus / "manifest.json").read_text())
    return loaded


def sip_in_capture(pcap: Path) -> dict[str, tuple[set[str], set[int]]]:
    """Call-ID -> (methods, status codes) as tshark reads them from ``pcap``."""
    done = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-E", "separator=\t",
         "-e", "sip.Call-ID", "-e", "sip.Method", "-e", "sip.Status-Code"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    seen: dict[str, tuple[set[str], set[int]]] = defaultdict(lambda: (set(), set()))
    for line in done.stdout.splitlines():
        call_id, method, status = (line.split("\t") + ["", "", ""])[:3]
        if method:
            seen[call_id][0].add(method)
        if status:
            seen[call_id][1].add(int(status))
    return dict(seen)


class TestCorpusFiles:
    def test_every_log_form_and_capture_was_written_and_is_not_empty(self, corpus: Path) -> None:
        names = ALL_LOGS + list(JOURNAL_FILES) + CAPTURES + ["manifest.json"]
        missing = [n for n in names if not (corpus / n).is_file() or (corpus / n).stat().st_size == 0]
        assert missing == []

    def test_every_file_the_manifest_names_exists(self, corpus: Path, manifest: dict[str, Any]) -> None:
        assert [n for n in manifest["files"] if not (corpus / n).is_file()] == []

    def test_the_manifest_records_kamailio_the_commands_and_the_ports_of_each_form(
            self, manifest: dict[str, Any]) -> None:
        assert manifest["kamailio_version"].startswith("version: kamailio")
        for name, form in manifest["forms"].items():
            assert form["command"] and "kamailio" in form["command"], name
            assert form["ports"]["kamailio"] > 0, name
            assert form["start"] < form["end"], name

    def test_capture_pcap_is_the_capture_of_the_syslog_run(self, corpus: Path) -> None:
        assert (corpus / "capture.pcap").read_bytes() == (corpus / "capture-syslog.pcap").read_bytes()


class TestLevels:
    @pytest.mark.parametrize("name", ALL_LOGS)
    def test_every_kamailio_level_name_appears_in_the_log(self, corpus: Path, name: str) -> None:
        data = (corpus / name).read_bytes()
        assert [level for level in LEVEL_NAMES if level.encode() not in data] == []

    @pytest.mark.parametrize("name", ALL_LOGS)
    def test_an_xlog_line_of_every_level_of_the_script_appears(self, corpus: Path, name: str) -> None:
        data = (corpus / name).read_bytes()
        probes = ["ALERT", "BUG", "CRIT2", "CRIT", "L_CRIT(-2)", "ERR", "WARN", "NOTICE", "INFO", "DBG"]
        assert [p for p in probes if f"level probe {p} ".encode() not in data] == []

    def test_journal_priorities_cover_alert_to_debug(self, corpus: Path) -> None:
        prios = {json.loads(line)["PRIORITY"] for line in (corpus / "journal.json").read_bytes().splitlines()}
        assert {"1", "2", "3", "4", "5", "6", "7"} <= prios


    @pytest.mark.parametrize("name,text", [
        ("stderr.log", b") : {1 1 INVITE call-completed-1@kamlog.test} <script>: level probe L_CRIT(-2)"),
        ("syslog-rfc3339.log", b"]: : {1 1 INVITE call-completed-1@kamlog.test} <script>: level probe L_CRIT(-2)"),
        ("json.log", b'"level": "", "module": "xlog"'),
    ])
    def test_level_minus_two_has_an_empty_name(self, corpus: Path, name: str, text: bytes) -> None:
        assert text in (corpus / name).read_bytes()


class TestPrefixAndCallIds:
    @pytest.mark.parametrize("name", PREFIXED_LOGS)
    def test_the_default_log_prefix_appears_with_method_cseq_and_call_id(self, corpus: Path, name: str) -> None:
        assert b"{1 1 INVITE call-completed-1@kamlog.test} " in (corpus / name).read_bytes()

    @pytest.mark.parametrize("name", ALL_LOGS)
    def test_every_scenario_call_id_appears_in_the_log(self, corpus: Path, name: str) -> None:
        data = (corpus / name).read_bytes()
        missing = [s.call_id for s in SCENARIOS
                   if s.call_id.encode() not in data and json_escaped(s.call_id).encode() not in data]
        assert missing == []

    @pytest.mark.parametrize("name", ["json-c.log", "json-ac.log", "syslog-json-rfc3339.log"])
    def test_the_json_engine_writes_a_quoted_call_id_unescaped(self, corpus: Path, name: str) -> None:
        assert b'callid": "call-"quoted"-1@kamlog.test"' in (corpus / name).read_bytes()

    @pytest.mark.parametrize("name", ["stderr.log", "syslog-rfc3339.log"])
    def test_lines_outside_any_sip_message_have_no_prefix(self, corpus: Path, name: str) -> None:
        text = (corpus / name).read_text(errors="replace")
        assert re.search(r"(NOTICE|INFO): <script>: htable:mod-init", text)
        assert re.search(r"INFO: <script>: rtimer tick", text)


class TestTraps:
    @pytest.mark.parametrize("name", ["stderr.log", "stderr-color.log"])
    def test_a_multi_line_message_continues_on_bare_lines_in_stderr(self, corpus: Path, name: str) -> None:
        lines = (corpus / name).read_bytes().splitlines()
        dump = next(i for i, line in enumerate(lines) if b"SIP message dump" in line)
        assert lines[dump + 1].startswith(b"INVITE sip:")
        assert lines[dump + 2].startswith(b"Via: SIP/2.0/UDP")

    @pytest.mark.parametrize("name", ["syslog-traditional.log", "syslog-rfc3339.log", "syslog-rfc5424.log"])
    def test_rsyslog_escapes_newlines_of_a_multi_line_message(self, corpus: Path, name: str) -> None:
        dump = next(line for line in (corpus / name).read_bytes().splitlines() if b"SIP message dump" in line)
        assert b"#015#012Via: SIP/2.0/UDP" in dump

    @pytest.mark.parametrize("name", RSYSLOG_LOGS)
    def test_lines_written_before_openlog_have_no_pid(self, corpus: Path, name: str) -> None:
        first = (corpus / name).read_bytes().splitlines()[0]
        assert b" kamailio: " in first or b" kamailio - - - " in first

    @pytest.mark.parametrize("name", [n for n in RSYSLOG_LOGS if "rfc3339" in n or "rfc5424" in n])
    def test_rsyslog_high_precision_timestamps_have_microseconds(self, corpus: Path, name: str) -> None:
        first = (corpus / name).read_text(errors="replace").splitlines()[0]
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d ", first)

    def test_colour_lines_start_with_escape_sequences_that_concurrent_writers_can_displace(
            self, corpus: Path) -> None:
        # Each record is written as colour, text, reset: the reset lands at the start of the next
        # line, and when workers write at once (at fork) escapes end up on another worker's line.
        lines = (corpus / "stderr-color.log").read_bytes().splitlines()
        records = [line for line in lines if re.search(rb"^\S*\s*\d+\(\d+\) [A-Z]*:", line)]
        coloured = [line for line in records if re.match(rb"(\x1b\[[0-9;]*m)+ *\d+\(\d+\) ", line)]
        assert len(records) > 100
        assert len(coloured) > 0.98 * len(records)
        assert lines[1].startswith(b"\x1b[0;39;49m\x1b[")

    def test_json_a_writes_an_invalid_function_member(self, corpus: Path) -> None:
        assert b'"kamailio.function": """' in (corpus / "json-a.log").read_bytes()

    def test_json_escapes_the_newlines_of_a_multi_line_message(self, corpus: Path) -> None:
        dump = next(line for line in (corpus / "json-c.log").read_bytes().splitlines() if b"SIP message dump" in line)
        assert b"\\r\\nVia: SIP/2.0/UDP" in dump

    def test_the_cee_engine_writes_cee_bodies_through_syslog(self, corpus: Path) -> None:
        assert all(b" @cee: {" in line for line in (corpus / "syslog-json-U-rfc3339.log").read_bytes().splitlines())

    def test_journald_stores_a_multi_line_message_as_bytes(self, corpus: Path) -> None:
        entries = [json.loads(line) for line in (corpus / "journal.json").read_bytes().splitlines()]
        binary = [bytes(e["MESSAGE"]) for e in entries if isinstance(e["MESSAGE"], list)]
        assert any(b"SIP message dump" in m and b"\r\n" in m for m in binary)


class TestScenarios:
    def test_every_sipp_scenario_of_every_form_succeeded(self, manifest: dict[str, Any]) -> None:
        failed = [(form, s["name"]) for form, entry in manifest["forms"].items()
                  for s in entry["scenarios"] if not s["ok"]]
        assert failed == []

    def test_every_form_ran_every_scenario_with_its_call_id(self, manifest: dict[str, Any]) -> None:
        expected = [(s.name, s.call_id) for s in SCENARIOS]
        for form, entry in manifest["forms"].items():
            assert [(s["name"], s["call_id"]) for s in entry["scenarios"]] == expected, form

    @pytest.mark.parametrize("name", CAPTURES)
    def test_the_capture_holds_the_sip_methods_and_statuses_of_every_scenario(self, corpus: Path,
                                                                             name: str) -> None:
        seen = sip_in_capture(corpus / name)
        for scenario in SCENARIOS:
            methods, statuses = EXPECTED_SIP[scenario.name]
            got_methods, got_statuses = seen.get(scenario.call_id, (set(), set()))
            assert methods <= got_methods, (scenario.name, got_methods)
            assert statuses <= got_statuses, (scenario.name, got_statuses)
            assert scenario.expected_status in got_statuses


class TestCommittedSamples:
    """examples/ and the grammar tests' raw inputs are real, small, and say what they hold."""

    def test_the_example_log_is_a_small_rfc3339_rsyslog_file(self) -> None:
        lines = (EXAMPLES / "kamailio.log").read_text().splitlines()
        assert 20 < len(lines) < 400
        assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \S+ kamailio", line)
                   for line in lines)

    def test_the_example_capture_is_of_the_same_run_as_the_example_log(self) -> None:
        log = (EXAMPLES / "kamailio.log").read_text()
        seen = sip_in_capture(EXAMPLES / "capture.pcap")
        assert "call-completed-1@kamlog.test" in seen
        assert all(call_id in log for call_id in seen)

    def test_every_example_file_is_described_in_its_readme(self) -> None:
        readme = (EXAMPLES / "README.md").read_text()
        assert [p.name for p in EXAMPLES.iterdir() if p.name != "README.md" and p.name not in readme] == []

    @pytest.mark.parametrize("grammar,case", sorted(set(GOLDEN_INPUTS.values())))
    def test_each_golden_input_is_a_small_real_excerpt(self, grammar: str, case: str) -> None:
        path = GRAMMAR_SAMPLES / grammar / case
        lines = path.read_bytes().splitlines()
        assert 20 <= len(lines) <= 60, len(lines)
        assert b"quoted" in path.read_bytes()
        if grammar == "journald-json":  # the $mb dump, whose MESSAGE journalctl writes as byte values
            assert b'"MESSAGE":[' in path.read_bytes()

    def test_every_golden_input_is_described_in_the_grammars_readme(self) -> None:
        readme = (GRAMMAR_SAMPLES / "README.md").read_text()
        missing = [f"{p.parent.name}/{p.name}" for p in GRAMMAR_SAMPLES.glob("*/*.log")
                   if f"{p.parent.name}/{p.name}" not in readme]
        assert missing == []


class TestPorts:
    def test_the_tests_never_pick_a_port_tshark_decodes_as_another_protocol(self) -> None:
        from tests.corpus.runners import dissector_ports, free_ports

        claimed = dissector_ports()
        assert 22222 in claimed  # RTPproxy's: a REGISTER from it was "RTPproxy" to tshark once
        assert not claimed.intersection(free_ports(200))
