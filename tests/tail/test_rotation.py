"""The follower against real rotations: real logrotate, a writer process that behaves like
rsyslog (it keeps its descriptor until it is told to reopen), lines numbered so that every
loss, repetition or reordering shows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kamlog.tail import Follower, Notice
from tests.tail.conftest import (
    Collector,
    Logrotate,
    Writers,
    chunks_of,
    numbers,
    numbers_on_disk,
    pull_until_idle,
    wait_exit,
    wait_until,
    write_lines,
)
from tests.tail.writer import line

pytestmark = pytest.mark.realworld

LINES = 600
RATE = 300.0


def follow(path: Path | str) -> Collector:
    return Collector(Follower([str(path)], poll_interval=0.05, close_inactive=1.0))


def rotate_during_writing(
    writers: Writers, logrotate: Logrotate, log: Path, collector: Collector, *options: str,
    times: int = 2, every: float = 0.6, reopen: bool = True,
) -> None:
    writer = writers.start(log, count=LINES, rate=RATE)
    logrotate.configure(log, *options, reopen_pid=writer.pid if reopen else None)
    for _ in range(times):
        time.sleep(every)
        logrotate.rotate()
    wait_exit(writer)
    collector.wait_for_line(LINES - 1)
    collector.stop()


class TestRenameAndCreate:
    def test_every_line_arrives_once_in_order_across_two_rotations(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(log)
        rotate_during_writing(writers, logrotate, log, collector, "create 0644")
        assert collector.numbers() == list(range(LINES))
        assert (logdir / "kamailio.log.2").exists()
        kinds = [n.kind for n in collector.notices]
        assert kinds.count("rotated") == 2 and kinds.count("reopened") == 2

    def test_every_line_arrives_once_with_delaycompress_as_old_files_become_gz(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(log)
        rotate_during_writing(
            writers, logrotate, log, collector, "create", "compress", "delaycompress",
            times=3, every=0.45,
        )
        assert collector.numbers() == list(range(LINES))
        assert (logdir / "kamailio.log.2.gz").exists() and (logdir / "kamailio.log.1").exists()

    def test_lines_written_to_the_old_file_after_it_was_compressed_away_still_arrive(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        """Without delaycompress, logrotate gzips and deletes the renamed file at once, while
        the writer still writes to it until it reopens: the follower reads the deleted file."""
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(log)
        rotate_during_writing(writers, logrotate, log, collector, "create", "compress")
        assert collector.numbers() == list(range(LINES))
        assert (logdir / "kamailio.log.1.gz").exists() and not (logdir / "kamailio.log.1").exists()

    def test_dateext_names_that_the_glob_also_matches_are_not_read_twice(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(f"{logdir}/kamailio.log*")
        rotate_during_writing(
            writers, logrotate, log, collector, "create", "dateext", "dateformat -%Y%m%d-%s",
            every=1.05,
        )
        assert collector.numbers() == list(range(LINES))
        assert len(list(logdir.glob("kamailio.log-*"))) == 2


class TestCopytruncate:
    def check_copytruncate(self, collector: Collector, logdir: Path) -> None:
        """Every line stored on disk arrived once, in order; the lines that arrived nowhere are
        the ones copytruncate itself lost (written between its copy and its truncate)."""
        got = collector.numbers()
        repeated = sorted(n for n in set(got) if got.count(n) > 1)
        assert got == sorted(set(got)), f"repeated: {repeated}, order: {got}"
        on_disk = numbers_on_disk(sorted(logdir.glob("kamailio.log*")))
        assert on_disk - set(got) == set(), "lines on disk that never arrived"
        lost_by_logrotate = set(range(LINES)) - set(got)
        assert len(lost_by_logrotate) <= 30, f"lost: {sorted(lost_by_logrotate)}"
        assert sum(n.kind == "truncated" for n in collector.notices) == 2

    def test_every_line_on_disk_arrives_once_in_order(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(log)
        rotate_during_writing(writers, logrotate, log, collector, "copytruncate", reopen=False)
        self.check_copytruncate(collector, logdir)

    def test_the_copy_that_the_glob_also_matches_is_not_read_again(
        self, writers: Writers, logrotate: Logrotate, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        log.touch()
        collector = follow(f"{logdir}/kamailio.log*")
        rotate_during_writing(writers, logrotate, log, collector, "copytruncate", reopen=False)
        self.check_copytruncate(collector, logdir)

    def test_lines_written_between_two_polls_are_read_from_the_copy(
        self, logrotate: Logrotate, logdir: Path
    ) -> None:
        """The follower is not pulled while lines are written and the file is copied and
        truncated: the lines it had not read yet are only in the copy now."""
        log = logdir / "kamailio.log"
        write_lines(log, range(0, 50))
        logrotate.configure(log, "copytruncate")
        items = iter(Follower([str(log)], poll_interval=0.05))
        got = chunks_of(pull_until_idle(items))
        write_lines(log, range(50, 80))
        logrotate.rotate()
        write_lines(log, range(80, 100))
        more = pull_until_idle(items)
        got += chunks_of(more)
        assert numbers(got) == list(range(100))
        assert any("kamailio.log.1" in n.message for n in more if isinstance(n, Notice) and n.kind == "truncated")


class TestDeletedTruncatedMissing:
    def test_a_deleted_and_recreated_file_is_followed_without_loss(
        self, writers: Writers, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        writer = writers.start(log, count=LINES, rate=RATE)
        wait_until(log.exists, 5, "the log to exist")
        collector = follow(log)
        time.sleep(0.6)
        log.unlink()
        os.kill(writer.pid, 1)  # SIGHUP: reopen, which creates the file again
        wait_exit(writer)
        collector.wait_for_count(LINES)
        collector.stop()
        assert collector.numbers() == list(range(LINES))
        kinds = [n.kind for n in collector.notices]
        assert "deleted" in kinds and "reopened" in kinds

    def test_a_file_truncated_by_hand_is_read_again_from_the_start(
        self, writers: Writers, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        collector = follow(log)
        wait_exit(writers.start(log, count=200, rate=1000))
        collector.wait_for_count(200)
        os.truncate(log, 0)
        wait_exit(writers.start(log, first=200, count=200, rate=1000))
        collector.wait_for_count(400)
        collector.stop()
        assert collector.numbers() == list(range(400))
        assert any(n.kind == "truncated" for n in collector.notices)

    def test_a_file_truncated_and_written_past_the_old_offset_between_two_polls_is_read_again(
        self, logdir: Path
    ) -> None:
        log = logdir / "kamailio.log"
        write_lines(log, range(0, 10))
        items = iter(Follower([str(log)], poll_interval=0.05))
        got = chunks_of(pull_until_idle(items))
        with open(log, "wb") as f:  # truncate, then more than there was
            f.write(b"".join(line(n) for n in range(10, 40)))
        got += chunks_of(pull_until_idle(items))
        assert numbers(got) == list(range(40))

    def test_a_file_that_does_not_exist_yet_is_waited_for(
        self, writers: Writers, logdir: Path
    ) -> None:
        log = logdir / "later" / "kamailio.log"
        collector = follow(log)
        wait_until(lambda: any(n.kind == "waiting" for n in collector.notices), 5, "a waiting notice")
        log.parent.mkdir()
        wait_exit(writers.start(log, count=300, rate=1000))
        collector.wait_for_count(300)
        collector.stop()
        assert collector.numbers() == list(range(300))
        assert [n.kind for n in collector.notices] == ["waiting", "created"]
