"""The [journald] source of `kamlog collect`: its cursor bookkeeping on real journal entries, a
journalctl that fails, a journal of two boots, and a real run (a private systemd-journald, a
real Kamailio logging into it under SIPp calls, `kamlog collect` killed with -9 and started
again) that ends with exactly one document per Kamailio entry of the journal."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from hashlib import blake2b
from pathlib import Path
from queue import Queue
from typing import Any

import pytest

from kamlog.events import LogEvent
from kamlog.parsing.options import ParseOptions
from kamlog.service.collector import EventBatch
from kamlog.service.config import JournalSource
from kamlog.service.journal import JournalTail
from kamlog.sources.journal import journal_matches
from kamlog.store.documents import Identities, event_id
from tests.corpus.runners import LOOPBACK, Journald, Kamailio, Sipp, free_port, wait_for
from tests.service.live import Collect, assert_stored_exactly, store_ids, write_config

SAMPLE = Path(__file__).parent.parent / "grammars" / "journald-json" / "journal.log"
# What the [journald] source matches by default: Kamailio's syslog tags and its unit's stderr.
MATCHES = ["SYSLOG_IDENTIFIER=kamailio", "+", "SYSLOG_IDENTIFIER=/usr/sbin/kamailio", "+",
           "_SYSTEMD_UNIT=kamailio.service"]


def real_lines() -> list[bytes]:
    """Entries a real Kamailio logged into a real journald, as `journalctl -o json` printed them."""
    return SAMPLE.read_bytes().splitlines()


def changed(line: bytes, **fields: str | None) -> bytes:
    """The entry with some fields set (None: removed), printed as journalctl prints it."""
    entry = json.loads(line)
    for name, value in fields.items():
        if value is None:
            entry.pop(name, None)
        else:
            entry[name] = value
    return json.dumps(entry, separators=(",", ":")).encode()


def cursor(line: bytes) -> str:
    return str(json.loads(line)["__CURSOR"])


def place(entry_cursor: str) -> tuple[str, int]:
    fields = dict(part.split("=", 1) for part in entry_cursor.split(";"))
    return fields["s"], int(fields["i"], 16)


def entry_document_id(entry_cursor: str) -> str:
    """The id an entry's document must have: its seqnum id names the source, its seqnum the place."""
    seqnum_id, seqnum = place(entry_cursor)
    return event_id(blake2b(seqnum_id.encode(), digest_size=16).digest(), seqnum)


def new_tail(tmp_path: Path, saved: str | None = None, directory: str | None = None,
             journalctl: str = "journalctl", **source: Any) -> tuple[JournalTail, Queue[Any], Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "journal.json"
    if saved is not None:
        state.write_text(json.dumps({"cursor": saved}))
    out: Queue[Any] = Queue(maxsize=64)
    tail = JournalTail(JournalSource(ParseOptions(**source), directory=directory), str(state), out,
                       Identities(), journalctl=journalctl)
    return tail, out, state


def saved_cursor(state: Path) -> str | None:
    return str(json.loads(state.read_bytes())["cursor"]) if state.exists() else None


def until_end(out: Queue[Any]) -> list[LogEvent]:
    """The events a started source puts, until its None (bounded: a source that hangs fails)."""
    events: list[LogEvent] = []
    while True:
        item = out.get(timeout=60)
        if item is None:
            return events
        assert isinstance(item, EventBatch)
        events.extend(item.events)


class TestCursorBookkeeping:
    def test_commit_writes_the_cursor_of_the_last_entry_that_is_stored_with_every_entry_before_it(
        self, tmp_path: Path
    ) -> None:
        lines = real_lines()[:5]
        tail, _, state = new_tail(tmp_path)
        events = tail.read(lines)
        assert len(events) == 5
        tail.stored([events[2], events[0]])
        tail.commit()
        assert saved_cursor(state) == cursor(lines[0])
        tail.stored([events[1]])
        tail.commit()
        assert saved_cursor(state) == cursor(lines[2])
        tail.stored([events[4]])
        tail.commit()
        assert saved_cursor(state) == cursor(lines[2])
        tail.stored([events[3]])
        tail.commit()
        assert saved_cursor(state) == cursor(lines[4])

    def test_nothing_is_written_while_the_first_entry_read_is_not_stored(self, tmp_path: Path) -> None:
        tail, _, state = new_tail(tmp_path)
        events = tail.read(real_lines()[:3])
        tail.stored(events[1:])
        tail.commit()
        assert not state.exists()

    def test_another_programs_entry_gives_no_event_and_does_not_hold_the_cursor_back(self, tmp_path: Path) -> None:
        first, other, last = real_lines()[:3]
        other = changed(other, SYSLOG_IDENTIFIER="sshd")
        tail, _, state = new_tail(tmp_path)
        events = tail.read([first, other, last])
        assert [e.offset for e in events] == [place(cursor(first))[1], place(cursor(last))[1]]
        tail.stored(events[:1])
        tail.commit()
        assert saved_cursor(state) == cursor(other)
        tail.stored(events[1:])
        tail.commit()
        assert saved_cursor(state) == cursor(last)

    def test_an_entry_the_grammar_cannot_parse_is_an_event_with_its_error_and_holds_the_cursor_until_stored(
        self, tmp_path: Path
    ) -> None:
        first, broken, last = real_lines()[:3]
        broken = changed(broken, MESSAGE=None)
        tail, _, state = new_tail(tmp_path)
        events = tail.read([first, broken, last])
        assert [e.error is not None for e in events] == [False, True, False]
        tail.stored([events[0], events[2]])
        tail.commit()
        assert saved_cursor(state) == cursor(first)
        tail.stored([events[1]])
        tail.commit()
        assert saved_cursor(state) == cursor(last)

    def test_an_event_is_named_by_its_entrys_seqnum_id_and_placed_at_its_seqnum(self, tmp_path: Path) -> None:
        line = real_lines()[0]
        tail, _, _ = new_tail(tmp_path)
        [event] = tail.read([line])
        seqnum_id, seqnum = place(cursor(line))
        assert (event.path, event.offset) == (f"journal:{seqnum_id}", seqnum)
        assert event_id(tail.identities.log(event), event.offset) == entry_document_id(cursor(line))

    def test_the_same_entry_read_after_a_restart_has_the_same_document_id(self, tmp_path: Path) -> None:
        lines = real_lines()[:4]
        first, _, _ = new_tail(tmp_path / "a")
        again, _, _ = new_tail(tmp_path / "b", saved=cursor(lines[1]))
        before = first.read(lines)[2:]
        after = again.read(lines[1:])
        assert [event_id(first.identities.log(e), e.offset) for e in before] == \
               [event_id(again.identities.log(e), e.offset) for e in after]

    def test_a_restart_starts_at_the_saved_entry_and_leaves_it_out(self, tmp_path: Path) -> None:
        lines = real_lines()[:5]
        tail, _, _ = new_tail(tmp_path, saved=cursor(lines[2]))
        assert f"--cursor={cursor(lines[2])}" in tail.command()
        assert [e.offset for e in tail.read(lines[2:])] == [place(cursor(line))[1] for line in lines[3:]]

    def test_when_the_saved_entry_was_vacuumed_the_first_entry_left_is_read(self, tmp_path: Path) -> None:
        lines = real_lines()[:5]
        tail, _, _ = new_tail(tmp_path, saved=cursor(lines[2]))
        assert [e.offset for e in tail.read(lines[3:])] == [place(cursor(line))[1] for line in lines[3:]]

    def test_a_first_start_reads_the_journal_from_its_first_entry(self, tmp_path: Path) -> None:
        tail, _, _ = new_tail(tmp_path)
        command = tail.command()
        assert "--no-tail" in command and not any(a.startswith("--cursor") for a in command)

    def test_a_state_file_without_a_cursor_reads_the_journal_from_its_first_entry(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        (tmp_path / "journal.json").write_text("{")
        with caplog.at_level(logging.WARNING, "kamlog.collect"):
            tail, _, _ = new_tail(tmp_path)
        assert tail.saved is None
        assert caplog.messages == [f"{tmp_path / 'journal.json'} holds no journal cursor; the journal is read "
                                   "again from its first entry"]


class TestMatches:
    def test_collect_matches_kamailios_tags_and_the_configured_units(self, tmp_path: Path) -> None:
        tail, _, _ = new_tail(tmp_path, directory=str(tmp_path))
        command = tail.command()
        assert command[command.index("--directory") + 1] == str(tmp_path)
        assert command[-len(MATCHES):] == MATCHES
        units = JournalSource(ParseOptions(programs=("kamailio-lb",)), units=("lb.service", "sbc.service"))
        assert journal_matches(units.options, units.units) == [
            "SYSLOG_IDENTIFIER=kamailio-lb", "+", "_SYSTEMD_UNIT=lb.service", "+", "_SYSTEMD_UNIT=sbc.service"]

    def test_tail_still_matches_the_unit_only_when_no_tag_is_given(self) -> None:
        assert journal_matches(ParseOptions()) == MATCHES
        assert journal_matches(ParseOptions(programs=("kamailio-lb",))) == ["SYSLOG_IDENTIFIER=kamailio-lb"]


class TestJournalctlFails:
    def test_a_journal_directory_that_does_not_exist_ends_the_source_with_journalctls_sentence(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        missing = tmp_path / "missing"
        tail, out, _ = new_tail(tmp_path, directory=str(missing))
        with caplog.at_level(logging.INFO, "kamlog.collect"):
            tail.start()
            assert until_end(out) == []
            tail.join(10)
        assert tail.error == f"journalctl ended with exit code 1: Failed to open {missing}: No such file or directory"
        assert caplog.messages[-1] == f"{tail.error}; the [journald] source stopped"
        assert not any(r.exc_info for r in caplog.records)

    def test_a_missing_journalctl_ends_the_source_with_one_sentence(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        absent = tmp_path / "bin" / "journalctl"
        tail, out, _ = new_tail(tmp_path, journalctl=str(absent))
        with caplog.at_level(logging.INFO, "kamlog.collect"):
            tail.start()
            assert until_end(out) == []
        assert tail.error == f"{absent} is not installed, so the journal cannot be read"
        assert caplog.messages == [f"{tail.error}; the [journald] source stopped"]


# -- real journald ------------------------------------------------------------------------------


class BootJournald(Journald):
    """A private systemd-journald that takes the machine's boot id to be `boot_id` (bound over
    /proc/sys/kernel/random/boot_id in its own mount namespace)."""

    def __init__(self, workdir: Path, boot_id: str) -> None:
        super().__init__(workdir)
        boot_file = workdir / "boot_id"
        boot_file.write_text(f"{boot_id}\n")
        self.namespace.extra_setup += f'mount --bind "{boot_file}" /proc/sys/kernel/random/boot_id\n'


def logger(journald: Journald, *messages: str) -> None:
    """Kamailio-tagged syslog messages into this journal, by the real logger(1)."""
    for message in messages:
        subprocess.run(journald.namespace.wrap(["logger", "-t", "kamailio", message]), check=True, timeout=10)


def kamailio_entries(journal_dir: Path) -> list[dict[str, Any]]:
    """Kamailio's entries, as journalctl itself reads them from the directory."""
    done = subprocess.run(["journalctl", "--directory", str(journal_dir), "--no-pager", "-o", "json", *MATCHES],
                          capture_output=True, check=True, timeout=60)
    return [json.loads(line) for line in done.stdout.splitlines()]


def settled_entries(journal_dir: Path) -> list[dict[str, Any]]:
    """Kamailio's entries once the journal stopped growing (everything Kamailio sent is in)."""
    counts = [-1]

    def settled() -> bool:
        counts.append(len(kamailio_entries(journal_dir)))
        time.sleep(0.5)
        return counts[-1] == counts[-2]

    wait_for(settled, timeout=30, what="the journal to stop growing")
    return kamailio_entries(journal_dir)


@pytest.mark.realworld
class TestFollowing:
    def test_a_journal_directory_still_empty_at_start_is_followed_until_its_first_entries(
        self, tmp_path: Path
    ) -> None:
        """`journalctl --follow --directory` on an empty directory fails without --merge (252)."""
        journald = Journald(tmp_path)
        journald.journal_dir.mkdir(parents=True)
        tail, out, _ = new_tail(tmp_path, directory=str(journald.journal_dir))
        tail.start()
        try:
            with journald:
                logger(journald, "INFO: <script>: the first line")
                item = out.get(timeout=60)
        finally:
            tail.stop()
        assert item is not None, tail.error
        assert [e.message for e in item.events] == ["the first line"]
        assert until_end(out) == []
        assert tail.error is None


@pytest.mark.realworld
class TestEarlierBoot:
    def test_a_restart_after_a_reboot_reads_the_earlier_boots_entries_after_the_cursor_then_the_new_boots(
        self, tmp_path: Path
    ) -> None:
        """`journalctl --follow` alone keeps to the last boot (systemd 252): the entries logged
        between the last commit and the reboot would be lost."""
        combined = tmp_path / "combined"
        boots = ["01234567-89ab-cdef-0123-456789abcdef", "11234567-89ab-cdef-0123-456789abcdef"]
        for n, boot in enumerate(boots):
            workdir = tmp_path / f"boot{n}"
            workdir.mkdir()
            with BootJournald(workdir, boot) as journald:
                logger(journald, *(f"INFO: <script>: boot {n} line {i}" for i in range(3)))
                wait_for(lambda: len(kamailio_entries(journald.journal_dir)) == 3, timeout=15,
                         what="the three messages in the journal")
            [file] = journald.journal_dir.glob("*/system.journal")
            (combined / file.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(file, combined / file.parent.name / f"boot{n}.journal")
        entries = kamailio_entries(combined)
        assert [e["_BOOT_ID"][:8] for e in entries] == ["01234567"] * 3 + ["11234567"] * 3
        tail, out, _ = new_tail(tmp_path, saved=entries[0]["__CURSOR"], directory=str(combined))
        tail.start()
        events: list[LogEvent] = []
        while len(events) < 5:
            item = out.get(timeout=60)
            assert item is not None, tail.error
            events.extend(item.events)
        tail.stop()
        assert until_end(out) == []
        expected = [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
        assert [e.message for e in events] == [f"boot {n} line {i}" for n, i in expected]
        assert tail.error is None


@contextlib.contextmanager
def kamailio_in_a_journal(workdir: Path, rate: float = 4) -> Iterator[tuple[Journald, Kamailio, Sipp]]:
    """A private journald, a Kamailio logging into it, a registered SIPp UAS, and calls to it."""
    with contextlib.ExitStack() as stack:
        journald = stack.enter_context(Journald(workdir))
        kamailio = stack.enter_context(Kamailio(workdir, log_target="syslog", namespace=journald.namespace, debug=3))
        uas_port = free_port()
        register = Sipp(workdir, "register.xml", remote=(LOOPBACK, kamailio.sip_port),
                        call_id="journal-register@kamlog.test", keys={"user": "answer", "contact_port": uas_port},
                        name="sipp-register")
        result = register.run()
        assert result.ok, result.output[-2000:]
        stack.enter_context(Sipp(workdir, "uas-answer.xml", local_port=uas_port, calls=None, timeout=3600,
                                 name="sipp-uas"))
        uac = stack.enter_context(Sipp(workdir, "uac-call.xml", remote=(LOOPBACK, kamailio.sip_port),
                                       keys={"callee": "answer"}, call_id="journal-%u-%p@kamlog.test",
                                       calls=None, rate=rate, timeout=3600, name="sipp-uac"))
        yield journald, kamailio, uac


def events_stored(collect: Collect) -> int:
    health = collect.health()
    return 0 if health is None else int(health["counters"]["events_stored"])


def last_stats(output: str) -> dict[str, int]:
    """The counters of a run's `stopped:` line."""
    [line] = [line for line in output.splitlines() if "stopped: " in line]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.realworld
class TestCollectFromJournald:
    def test_store_ends_with_one_document_per_kamailio_entry_after_kill_9_and_a_restart_from_the_cursor(
        self, tmp_path: Path
    ) -> None:
        store = tmp_path / "timeline.db"
        config = tmp_path / "kamlog.toml"
        state = tmp_path / "state"
        cursor_file = state / "journal.json"
        with kamailio_in_a_journal(tmp_path) as (journald, kamailio, uac):
            port = write_config(config, state, store=store, journald=str(journald.journal_dir))
            collect = Collect(tmp_path, config, port)
            with collect:
                wait_for(lambda: events_stored(collect) > 0 and cursor_file.exists(), timeout=90,
                         what="the first calls to be stored and the cursor written")
                collect.kill()  # with calls open, entries read and not stored, and some stored
                saved = saved_cursor(cursor_file)
                assert saved is not None
                stored_at_kill = store_ids(store)
                read_before = kamailio_entries(journald.journal_dir)
                cursors = [e["__CURSOR"] for e in read_before]
                upto = cursors.index(saved) + 1
                # Every entry up to the saved cursor was stored.
                assert {entry_document_id(c) for c in cursors[:upto]} <= stored_at_kill
                wait_for(lambda: len(kamailio_entries(journald.journal_dir)) > len(read_before) + 100,
                         timeout=60, what="Kamailio to log on while kamlog is down")
                collect.start()
                wait_for(lambda: events_stored(collect) > 0, timeout=90, what="the restarted kamlog to store")
                uac.stop()
                kamailio.stop()  # its shutdown is logged too: the journal must be final
                entries = settled_entries(journald.journal_dir)
                want = {entry_document_id(e["__CURSOR"]) for e in entries}
                assert len(want) == len(entries)
                wait_for(lambda: store_ids(store) >= want, timeout=120,
                         what="kamlog collect to store every Kamailio entry of the journal")
                assert collect.stop() == 0, collect.output
        assert_stored_exactly(store, want)  # one document per entry: want has one id per entry
        # The second run read the entries after the saved cursor, each once, and nothing before.
        after = {entry_document_id(e["__CURSOR"]) for e in entries[upto:]}
        second = last_stats((tmp_path / "collect-2.log").read_text())
        assert second["lines"] == len(entries) - upto
        assert second["store_present"] == len(after & stored_at_kill)
        assert second["unparsed"] == 0
        output = collect.output
        assert "Traceback" not in output, output
        assert f"journal: reading {journald.journal_dir} from its first entry, then following it" in output
        assert f"journal: reading {journald.journal_dir} from where it was left (cursor {saved})" in output
