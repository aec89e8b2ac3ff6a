"""`kamlog tail` follows the file a real Kamailio writes through a real rsyslog while real
`logrotate` rotates it during steady SIPp traffic: every line on disk arrives exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realworld.helpers import (
    Comparison, DiskLine, KamlogTail, kamailio_through_rsyslog, line_key, lines_on_disk, log_files, read_lines,
    record_key,
)
from tests.tail.conftest import Logrotate

pytestmark = pytest.mark.realworld

RATE = 20.0    # calls per second; about 350 log lines per second at debug=2
EVERY = 1.2    # seconds of traffic before each rotation, and after the last one
LOG = "kamailio.log"


@dataclass
class Outcome:
    comparison: Comparison
    disk: list[DiskLine]
    witness: list[DiskLine]
    files: list[str]
    kamlog: KamlogTail

    def lost_by_logrotate(self) -> list[str]:
        """Lines Kamailio wrote (the witness has them) that no file on disk holds."""
        lost = Counter(w.text for w in self.witness) - Counter(d.text for d in self.disk if d.complete)
        return sorted(lost.elements())

    def report(self) -> str:
        return f"files {self.files}\n{self.comparison.explain()}\n{self.kamlog.describe()}"


def follow_through_rotations(tmp_path: Path, options: Sequence[str], *, rotations: int = 2,
                             exists_at_start: bool = True) -> Outcome:
    """Follow kamailio.log with `kamlog tail -n all --format json` while SIPp calls go on and
    logrotate rotates it `rotations` times with `options` (postrotate: HUP rsyslog); then stop
    everything and return kamlog's records against every line on disk."""
    logdir = tmp_path / "log"
    logdir.mkdir(mode=0o755)
    log = logdir / LOG
    logrotate = Logrotate(tmp_path)
    args = ("-n", "all", "--format", "json", str(log))
    kamlog = None
    try:
        if not exists_at_start:
            kamlog = KamlogTail(*args)
            kamlog.wait_for_stderr("waiting for it to appear")
            assert not log.exists()
        with kamailio_through_rsyslog(tmp_path, log, rate=RATE) as pipeline:
            logrotate.configure(log, *options, reopen_pid=pipeline.rsyslog.pid)
            if kamlog is None:
                # Start with a history to read (-n all), while the calls go on.
                time.sleep(0.5)
                kamlog = KamlogTail(*args)
            kamlog.wait_for_lines(1)
            for _ in range(rotations):
                time.sleep(EVERY)
                logrotate.rotate()
            time.sleep(EVERY)
            pipeline.stop_load()
        # Kamailio and rsyslog have stopped (rsyslog drains its queue first): the files are final.
        disk = lines_on_disk(logdir, LOG)
        witness = read_lines(pipeline.witness_path)
        kamlog.wait_until(lambda: len(kamlog.lines()) >= len(disk), 30, f"{len(disk)} records")
        kamlog.wait_quiet(1.0)
        assert kamlog.stop() == 130, kamlog.describe()
        return Outcome(Comparison.of(disk, kamlog.records()), disk, witness,
                       [p.name for p in log_files(logdir, LOG)], kamlog)
    finally:
        if kamlog is not None:
            kamlog.stop()


def assert_each_file_was_written(outcome: Outcome) -> None:
    """Each generation got lines: the rotations happened during the traffic."""
    per_file = Counter(d.file for d in outcome.disk)
    assert all(per_file[f] > 0 for f in outcome.files), (per_file, outcome.files)


def assert_in_order(outcome: Outcome) -> None:
    """kamlog's records come in the order their lines were written: oldest file first, then
    by offset (outcome.files is newest first)."""
    age = {name: i for i, name in enumerate(reversed(outcome.files))}
    place = {line_key(d): (age[d.file], d.offset) for d in outcome.disk}
    order = [place[k] for k in map(record_key, outcome.kamlog.records()) if k in place]
    out_of_order = [(a, b) for a, b in zip(order, order[1:]) if b < a]
    assert not out_of_order, f"records out of order, e.g. {out_of_order[:5]}\n{outcome.report()}"


class TestRenameAndCreate:
    def test_every_line_kamailio_wrote_arrives_exactly_once_across_two_create_rotations(
        self, tmp_path: Path
    ) -> None:
        outcome = follow_through_rotations(tmp_path, ["create 0640"])
        assert outcome.files == [LOG, f"{LOG}.1", f"{LOG}.2"]
        assert_each_file_was_written(outcome)
        assert outcome.lost_by_logrotate() == [], "logrotate with create + HUP loses nothing"
        assert len(outcome.disk) == len(outcome.witness)
        assert outcome.comparison.exact, outcome.report()
        assert_in_order(outcome)

    def test_every_line_arrives_exactly_once_when_rotated_files_are_compressed_with_delaycompress(
        self, tmp_path: Path
    ) -> None:
        outcome = follow_through_rotations(tmp_path, ["create", "compress", "delaycompress"], rotations=3)
        assert outcome.files == [LOG, f"{LOG}.1", f"{LOG}.2.gz", f"{LOG}.3.gz"]
        assert_each_file_was_written(outcome)
        assert outcome.lost_by_logrotate() == []
        assert outcome.comparison.exact, outcome.report()
        assert_in_order(outcome)

    def test_a_file_that_does_not_exist_yet_is_followed_from_its_first_line_across_rotations(
        self, tmp_path: Path
    ) -> None:
        outcome = follow_through_rotations(tmp_path, ["create 0640"], exists_at_start=False)
        assert outcome.files == [LOG, f"{LOG}.1", f"{LOG}.2"]
        assert_each_file_was_written(outcome)
        assert outcome.lost_by_logrotate() == []
        assert outcome.comparison.exact, outcome.report()
        assert_in_order(outcome)
        first = outcome.kamlog.records()[0]
        assert first["log.offset"] == 0 and first["@timestamp"].startswith(
            outcome.witness[0].text[:26].replace("+00:00", "")
        )


class TestCopytruncate:
    def test_every_line_on_disk_arrives_exactly_once_across_two_copytruncate_rotations(
        self, tmp_path: Path, record_property: Callable[[str, object], None]
    ) -> None:
        outcome = follow_through_rotations(tmp_path, ["copytruncate"])
        assert outcome.files == [LOG, f"{LOG}.1", f"{LOG}.2"]
        assert_each_file_was_written(outcome)
        lost = outcome.lost_by_logrotate()
        c = outcome.comparison
        # Lines logrotate lost between its copy and its truncate are on no disk, but kamlog may
        # have read them before the truncate: such records are real lines of the witness.
        witness_keys = {line_key(w)[:2] for w in outcome.witness}
        lost_keys = {line_key(DiskLine("", 0, t, True))[:2] for t in lost}
        saved = [r for r in c.extra if record_key(r)[:2] in lost_keys]
        invented = [r for r in c.extra if record_key(r)[:2] not in witness_keys]
        record_property("lost_by_logrotate", len(lost))
        record_property("lost_lines_kamlog_still_read", len(saved))
        print(f"copytruncate: logrotate lost {len(lost)} of {len(outcome.witness)} lines; "
              f"kamlog had read {len(saved)} of them before the truncate")
        assert not c.missing and not c.repeated and not c.wrong_message, outcome.report()
        assert not invented and len(saved) == len(c.extra), outcome.report()
        assert_in_order(outcome)
