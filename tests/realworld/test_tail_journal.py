"""`kamlog tail --journal-dir DIR` on the journal a real systemd-journald writes while a real
Kamailio logs to it: the whole journal with --no-follow, and only new entries when following."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kamlog
from tests.corpus.generate import CALLEES, LEVEL_NAMES, SCENARIOS, Scenario, run_scenarios
from tests.corpus.runners import Journald, Kamailio, free_ports, wait_for
from tests.realworld.helpers import KamlogTail

pytestmark = pytest.mark.realworld

MATCH = "SYSLOG_IDENTIFIER=kamailio"
EVERY_LEVEL = set(range(-5, 4))  # ALERT -5 ... DEBUG 3


@dataclass
class JournalRun:
    workdir: Path
    journald: Journald
    kamailio: Kamailio
    callee_ports: dict[str, int]

    @property
    def directory(self) -> str:
        return str(self.journald.journal_dir)

    def run(self, *scenarios: Scenario) -> None:
        run_scenarios(self.workdir, self.kamailio.sip_port, scenarios, self.callee_ports)

    def entries(self) -> list[dict[str, Any]]:
        """Kamailio's entries as journalctl itself reads them from the directory."""
        return [json.loads(line) for line in self.journald.journalctl("-o", "json", MATCH).splitlines()]

    def stop_kamailio(self) -> list[dict[str, Any]]:
        """Stop Kamailio, wait until journald has stored all it sent; return the entries."""
        self.kamailio.stop()
        counts = [-1]

        def settled() -> bool:
            counts.append(len(self.entries()))
            time.sleep(0.5)
            return counts[-1] == counts[-2]

        wait_for(settled, timeout=15, what="the journal to stop growing")
        return self.entries()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[JournalRun]:
    with Journald(tmp_path) as journald, Kamailio(tmp_path, log_target="syslog", namespace=journald.namespace,
                                                   debug=3) as kamailio:
        yield JournalRun(tmp_path, journald, kamailio, dict(zip(CALLEES, free_ports(len(CALLEES)))))


def entry_key(entry: dict[str, Any]) -> tuple[dt.datetime, int]:
    # Exact microseconds (fromtimestamp() goes through a float).
    us = int(entry["__REALTIME_TIMESTAMP"])
    when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    return (when, int(entry["_PID"]))


def record_key(record: dict[str, Any]) -> tuple[dt.datetime, int]:
    return (dt.datetime.fromisoformat(record["@timestamp"].replace("Z", "+00:00")), record["process.pid"])


def entry_message(entry: dict[str, Any]) -> str:
    message = entry["MESSAGE"]
    if isinstance(message, list):  # journalctl -o json writes a message with control bytes as bytes
        return bytes(message).decode("utf-8", "replace")
    return str(message)


def assert_same_entries(records: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Each entry is exactly one record, with its message; nothing else."""
    got, want = Counter(map(record_key, records)), Counter(map(entry_key, entries))
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"{len(entries)} entries, {len(records)} records; missing {sorted(missing)[:5]}, "
        f"extra {sorted(extra)[:5]}"
    )
    by_key = {entry_key(e): entry_message(e) for e in entries}
    wrong = [r for r in records if r.get("message", "\0") not in by_key[record_key(r)]]
    assert not wrong, f"{len(wrong)} records whose message is not their entry's, e.g. {wrong[:3]}"


def renamed(scenario: Scenario, prefix: str) -> Scenario:
    """The same scenario with a Call-ID of its own."""
    return Scenario(scenario.name, scenario.uac, f"{prefix}-{scenario.call_id}", scenario.expected_status,
                    scenario.description, dict(scenario.keys), scenario.uas, scenario.callee)


SCENARIO = {s.name: s for s in SCENARIOS}


class TestJournalDir:
    def test_no_follow_returns_every_kamailio_entry_with_the_scenarios_call_ids_and_every_level(
        self, journal: JournalRun
    ) -> None:
        journal.run(*SCENARIOS)
        entries = journal.stop_kamailio()
        done = kamlog("tail", "--journal-dir", journal.directory, "--no-follow", "-n", "all", "--format", "json")
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert_same_entries(records, entries)
        call_ids = {r.get("sip.call_id") for r in records}
        assert {s.call_id for s in SCENARIOS} <= call_ids
        assert {r["kamailio.level"] for r in records} == EVERY_LEVEL
        assert {r["log.level"] for r in records} == {*LEVEL_NAMES, ""}
        assert all(r.get("kamailio.grammar") == "journald-json" and "error.message" not in r for r in records)
        # The `$mb` dump (a multi-line message; journalctl writes it as a byte array) is one record.
        dumps = [r for r in records if r["message"].startswith("SIP message dump ci=call-completed-1@")]
        assert len(dumps) == 1 and "\r\nCall-ID: call-completed-1@kamlog.test\r\n" in dumps[0]["message"]

    def test_follow_from_now_shows_the_new_calls_records_and_nothing_from_before(
        self, journal: JournalRun
    ) -> None:
        journal.run(SCENARIO["register-answer"], renamed(SCENARIO["call-completed"], "before"),
                    renamed(SCENARIO["call-unknown"], "before"))
        with KamlogTail("--journal-dir", journal.directory, "-n", "0", "--format", "json") as tail:
            # Kamailio's rtimer logs once a second: the first record says kamlog is following.
            tail.wait_for_lines(1, timeout=15)
            after = [renamed(SCENARIO["call-completed"], "after"), renamed(SCENARIO["call-unknown"], "after")]
            journal.run(*after)
            entries = journal.stop_kamailio()
            first = record_key(tail.records()[0])[0]
            expected = [e for e in entries if entry_key(e)[0] >= first]
            tail.wait_until(lambda: len(tail.lines()) >= len(expected), 30, f"{len(expected)} records")
            tail.wait_quiet(1.0)
            assert tail.stop() == 130, tail.describe()
        records = tail.records()
        assert first >= tail.started_at, "a record from before kamlog started"
        assert_same_entries(records, expected)
        call_ids = {r.get("sip.call_id") for r in records}
        assert {s.call_id for s in after} <= call_ids
        assert not any(str(cid).startswith("before-") or str(cid).startswith("register-") for cid in call_ids)

    def test_follow_after_the_last_n_entries_goes_on_from_the_last_one_without_gap_or_repeat(
        self, journal: JournalRun
    ) -> None:
        journal.run(SCENARIO["register-answer"], renamed(SCENARIO["call-completed"], "before"))
        with KamlogTail("--journal-dir", journal.directory, "-n", "3", "--format", "json") as tail:
            tail.wait_for_lines(3, timeout=15)
            after = renamed(SCENARIO["call-completed"], "after")
            journal.run(after)
            entries = journal.stop_kamailio()
            keys = [entry_key(e) for e in entries]
            start = keys.index(record_key(tail.records()[0]))
            tail.wait_until(lambda: len(tail.lines()) >= len(keys) - start, 30, f"{len(keys) - start} records")
            tail.wait_quiet(1.0)
            assert tail.stop() == 130, tail.describe()
        records = tail.records()
        # The last 3 entries when kamlog read the history, then every later one, each once.
        assert [record_key(r) for r in records] == keys[start:]
        assert after.call_id in {r.get("sip.call_id") for r in records}
