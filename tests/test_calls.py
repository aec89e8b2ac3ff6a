"""`kamlog calls` and `kamlog export` on real captures of the corpus, checked against tshark."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.cli_helpers import kamlog

#: What each scenario of the corpus ends as: (state, final code).
EXPECTED = {
    "register-answer-1@kamlog.test": ("REGISTERED", 200),
    "register-busy-1@kamlog.test": ("REGISTERED", 200),
    "register-ring-1@kamlog.test": ("REGISTERED", 200),
    "options-1@kamlog.test": ("OK", 200),
    "call-completed-1@kamlog.test": ("COMPLETED", 200),
    "call-busy-1@kamlog.test": ("BUSY", 486),
    "call-unknown-1@kamlog.test": ("NOT FOUND", 404),
    "call-cancelled-1@kamlog.test": ("CANCELLED", 487),
    'call-"quoted"-1@kamlog.test': ("COMPLETED", 200),
}

#: The corpus' captures of the same kind of run, each written by another program or link type.
CAPTURES = {
    "capture.pcap": "tcpdump -i lo: Ethernet, microseconds",
    "capture-any.pcap": "tcpdump -i any: Linux cooked v2 (SLL2)",
    "capture.pcapng": "tshark -F pcapng",
    "capture-tcp.pcap": "callers on TCP, callees on UDP",
    "sipdump-1.pcap": "Kamailio's sipdump module, with P-KSR-SIPDump",
}


def tshark_call_ids(path: Path) -> Counter[str]:
    """How many SIP messages of each Call-ID tshark sees in the capture (all occurrences, so a
    TCP segment with two messages counts two)."""
    done = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f",
         "-e", "sip.Call-ID"], capture_output=True, text=True, timeout=120, check=True)
    counts: Counter[str] = Counter()
    for line in done.stdout.splitlines():
        for call_id in line.split("\x1f"):
            if call_id:
                counts[call_id] += 1
    return counts


def calls_json(*args: str) -> list[dict]:
    result = kamlog("calls", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(CAPTURES))
class TestCallsOnRealCaptures:
    def test_every_scenario_ends_in_its_known_state(self, corpus: Path, name: str):
        dialogs = {d["call_id"]: d for d in calls_json(str(corpus / name))}
        assert {cid: (dialogs[cid]["state"], dialogs[cid]["final_code"]) for cid in EXPECTED} == EXPECTED

    def test_every_call_id_and_message_count_agrees_with_tshark(self, corpus: Path, name: str):
        dialogs = calls_json(str(corpus / name))
        assert {d["call_id"]: d["messages"] for d in dialogs} == dict(tshark_call_ids(corpus / name))


class TestCalls:
    def test_the_json_of_a_completed_call_has_every_field_the_issue_names(self, corpus: Path):
        (call,) = calls_json("--call-id", "call-completed-1@kamlog.test", str(corpus / "capture.pcap"))
        assert call["first_method"] == "INVITE" and call["linked_call_ids"] == []
        assert call["from"].startswith("sip:") and call["to"].startswith("sip:answer@")
        assert call["start"].endswith("Z") and len(call["start"]) == len("2026-11-28T10:14:51.123456Z")
        assert call["duration_s"] > 0 and call["retransmissions"] == 0
        assert len(call["endpoints"]) == 3  # caller, proxy, callee

    def test_filters_narrow_the_list_like_sngreps(self, corpus: Path):
        capture = str(corpus / "capture.pcap")
        every = {d["call_id"] for d in calls_json(capture)}
        assert every == set(EXPECTED)
        invites = {d["call_id"] for d in calls_json("--method", "invite", capture)}
        assert invites == {c for c in EXPECTED if c.startswith("call-")}
        assert "options-1@kamlog.test" not in {d["call_id"] for d in calls_json("--hide-options", capture)}
        assert {d["call_id"] for d in calls_json("--to", "BUSY@", capture)} == {"call-busy-1@kamlog.test",
                                                                             "register-busy-1@kamlog.test"}

    def test_several_captures_are_merged_into_one_list(self, corpus: Path):
        udp = {d["call_id"]: d for d in calls_json(str(corpus / "capture.pcap"))}
        tcp = {d["call_id"]: d for d in calls_json(str(corpus / "capture-tcp.pcap"))}
        both = calls_json("--pcap", str(corpus / "capture.pcap"), "--pcap", str(corpus / "capture-tcp.pcap"))
        # The two runs used the same Call-IDs, one after the other: each dialog spans both.
        assert {d["call_id"]: d["messages"] for d in both} == {
            cid: udp[cid]["messages"] + tcp[cid]["messages"] for cid in EXPECTED}
        assert [d["start"] for d in both] == sorted(d["start"] for d in both)

    def test_a_missing_capture_is_one_error_line(self, tmp_path: Path):
        result = kamlog("calls", str(tmp_path / "nope.pcap"))
        assert result.returncode != 0 and result.stderr.startswith("Error: ") and "nope.pcap" in result.stderr
        assert "Traceback" not in result.stderr


class TestExport:
    def test_one_calls_packets_become_a_pcap_that_tshark_reads_whole(self, corpus: Path, tmp_path: Path):
        out = tmp_path / "call.pcap"
        call_id = "call-cancelled-1@kamlog.test"
        result = kamlog("export", "--pcap", str(corpus / "capture.pcap"), "--call-id", call_id, "-o", str(out))
        assert result.returncode == 0, result.stderr
        expected = tshark_call_ids(corpus / "capture.pcap")[call_id]
        assert tshark_call_ids(out) == Counter({call_id: expected})
        assert result.stdout == f"wrote {expected} packets ({expected} SIP messages) of {call_id} to {out}\n"

    def test_a_call_over_tcp_exports_every_segment_that_carried_it(self, corpus: Path, tmp_path: Path):
        out = tmp_path / "call.pcap"
        call_id = "call-completed-1@kamlog.test"
        result = kamlog("export", str(corpus / "capture-tcp.pcap"), "--call-id", call_id, "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert tshark_call_ids(out) == Counter({call_id: tshark_call_ids(corpus / "capture-tcp.pcap")[call_id]})


class TestMessages:
    def test_every_message_of_a_capture_is_listed_with_packetbeats_names(self, corpus: Path):
        result = kamlog("messages", "--format", "json", str(corpus / "capture-tcp.pcap"))
        assert result.returncode == 0, result.stderr
        docs = [json.loads(line) for line in result.stdout.splitlines()]
        assert Counter(d["sip.call_id"] for d in docs) == tshark_call_ids(corpus / "capture-tcp.pcap")
        invite = next(d for d in docs if d.get("sip.method") == "INVITE")
        assert invite["event.dataset"] == "kamailio.sip" and invite["network.transport"] == "tcp"
        assert {"@timestamp", "source.ip", "source.port", "destination.ip", "destination.port",
                "sip.cseq.code", "sip.cseq.method", "sip.from.tag", "sip.via.branch"} <= set(invite)
        assert {d["network.transport"] for d in docs} == {"tcp", "udp"}  # callers on TCP, callees on UDP

    def test_sipdump_messages_name_the_kamailio_process_that_handled_them(self, corpus: Path):
        result = kamlog("messages", "--format", "json", str(corpus / "sipdump-1.pcap"))
        docs = [json.loads(line) for line in result.stdout.splitlines()]
        assert docs and all(d["sip.sipdump.pid"] > 0 and "sip.sipdump.pno" in d for d in docs)


class TestRetransmissions:
    def test_a_message_sent_again_on_the_same_path_counts_as_a_retransmission(self, tmp_path: Path):
        from kamlog.capture.files import open_capture
        from kamlog.capture.writer import write_pcap

        frames = list(open_capture("examples/capture.pcap"))
        invite = next(f for f in frames if b"INVITE sip:busy@kamlog.test" in f.data)
        again = invite._replace(ts_ns=invite.ts_ns + 500_000_000)  # what a UA does after T1
        with open(tmp_path / "retrans.pcap", "wb") as out:
            write_pcap(out, sorted([*frames, again], key=lambda f: f.ts_ns))
        (busy,) = calls_json("--call-id", "call-busy-1@kamlog.test", str(tmp_path / "retrans.pcap"))
        (before,) = calls_json("--call-id", "call-busy-1@kamlog.test", "examples/capture.pcap")
        assert (busy["messages"], busy["retransmissions"]) == (before["messages"] + 1, 1)
        assert busy["state"] == "BUSY"
