"""The Follower's contract: reading once, following, partial and long lines, stopping, and
resuming from the registry."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from kamlog.tail import IDLE, Chunk, Follower, Idle, Notice, Registry, tail_offset
from tests.tail.conftest import (
    Collector,
    Logrotate,
    Writers,
    chunks_of,
    numbers,
    pull_until_idle,
    pull_until_lines,
    wait_exit,
    write_lines,
)


def read_once(*paths: str, **options: Any) -> list[Chunk | Notice | Idle]:
    return list(Follower(list(paths), follow=False, **options))


class TestReadingOnce:
    def test_every_file_is_read_to_its_end_and_the_iteration_stops(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_bytes(b"a1\na2\n")
        (tmp_path / "b.log").write_bytes(b"b1\nb2")
        items = read_once(f"{tmp_path}/*.log")
        assert [(Path(c.path).name, c.offset, c.data, c.partial) for c in chunks_of(items)] == [
            ("a.log", 0, b"a1\na2\n", False),
            ("b.log", 0, b"b1\n", False),
            ("b.log", 3, b"b2", True),
        ]

    def test_a_missing_file_is_an_error_notice_and_the_others_are_read(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_bytes(b"a\n")
        items = read_once(str(tmp_path / "nope.log"), str(tmp_path / "a.log"))
        assert items[0] == Notice(str(tmp_path / "nope.log"), "error", f"{tmp_path}/nope.log does not exist")
        assert [c.data for c in chunks_of(items)] == [b"a\n"]

    def test_start_offsets_from_tail_offset_give_the_last_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"".join(b"%d\n" % i for i in range(100)))
        items = read_once(str(path), start_offsets={str(path): tail_offset(str(path), 3)})
        assert b"".join(c.data for c in chunks_of(items)) == b"97\n98\n99\n"

    def test_start_at_the_end_reads_nothing_that_is_already_there(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_bytes(b"old\n")
        assert chunks_of(read_once(str(tmp_path / "a.log"), start="end")) == []

    def test_a_large_file_comes_in_chunks_of_read_size(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        write_lines(path, range(30_000))
        chunks = chunks_of(read_once(str(path), read_size=1 << 20))
        assert len(chunks) == 3 and all(len(c.data) > (1 << 20) - 100 for c in chunks[:2])
        assert numbers(chunks) == list(range(30_000))

    def test_an_empty_path_list_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no path is configured"):
            Follower([])


class TestFollowing:
    def test_a_partial_last_line_is_held_until_its_newline_arrives(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"one\ntw")
        items = iter(Follower([str(path)], poll_interval=0.02))
        assert [c.data for c in chunks_of(pull_until_idle(items))] == [b"one\n"]
        with open(path, "ab") as f:
            f.write(b"o and a half")
        assert chunks_of(pull_until_idle(items)) == []
        with open(path, "ab") as f:
            f.write(b"\nthree\n")
        chunks = chunks_of(pull_until_idle(items))
        assert [(c.offset, c.data, c.partial) for c in chunks] == [(4, b"two and a half\nthree\n", False)]

    def test_the_partial_last_line_of_a_rotated_file_is_delivered_when_it_is_closed_for_good(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"one\ntw")
        items = iter(Follower([str(path)], poll_interval=0.02, close_inactive=0.2))
        pull_until_idle(items)
        path.rename(tmp_path / "a.log.1")
        path.write_bytes(b"three\n")
        got: list[Chunk | Notice] = []
        deadline = time.monotonic() + 5
        while not any(isinstance(c, Chunk) and c.partial for c in got) and time.monotonic() < deadline:
            got += pull_until_idle(items)
        assert [(c.data, c.partial) for c in chunks_of(got)] == [(b"three\n", False), (b"tw", True)]
        assert [n.kind for n in got if isinstance(n, Notice)] == ["rotated", "reopened"]

    def test_it_says_which_file_it_follows_and_from_where(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"one\ntw")
        items = iter(Follower([str(path)], start="end", poll_interval=0.02))
        assert next(items) == Notice(str(path), "following", f"following {path} from the end (offset 4)")

    def test_starting_at_the_end_delivers_the_line_being_written_whole(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"old\nhalf a ")
        items = iter(Follower([str(path)], start="end", poll_interval=0.02))
        assert chunks_of(pull_until_idle(items)) == []
        with open(path, "ab") as f:
            f.write(b"line\n")
        assert [c.data for c in chunks_of(pull_until_idle(items))] == [b"half a line\n"]

    def test_it_yields_idle_when_a_poll_finds_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"one\n")
        items = iter(Follower([str(path)], poll_interval=0.01))
        pull_until_idle(items)
        assert next(items) is IDLE

    def test_new_files_matching_a_glob_are_picked_up(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_bytes(b"a\n")
        items = iter(Follower([f"{tmp_path}/*.log"], poll_interval=0.02))
        pull_until_idle(items)
        (tmp_path / "b.log").write_bytes(b"b\n")
        (tmp_path / "c.txt").write_bytes(b"c\n")
        got = pull_until_idle(items)
        assert got == [
            Notice(str(tmp_path / "b.log"), "created", f"{tmp_path}/b.log appeared; following it from the start"),
            *chunks_of(got),
        ]
        assert [c.data for c in chunks_of(got)] == [b"b\n"]

    def test_stop_from_another_thread_ends_the_iteration_within_a_poll(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"one\n")
        follower = Follower([str(path)], poll_interval=10.0)
        threading.Timer(0.2, follower.stop).start()
        began = time.monotonic()
        items = list(follower)
        assert time.monotonic() - began < 2.0
        assert [c.data for c in chunks_of(items)] == [b"one\n"]

    def test_a_new_file_wakes_it_long_before_the_next_poll(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("kamlog.tail.follower.MIN_POLL_GAP", 20.0)
        pattern = f"{tmp_path}/*.log"
        items = iter(Follower([pattern], poll_interval=30.0))
        assert pull_until_idle(items) == [
            Notice(pattern, "waiting", f"no file matches {pattern}; waiting for it to appear")
        ]
        threading.Timer(0.3, lambda: write_lines(tmp_path / "b.log", range(1))).start()
        began = time.monotonic()
        assert numbers(pull_until_lines(items, 1, timeout=10)) == [0]
        assert time.monotonic() - began < 2.0

    def test_lines_that_flow_after_an_idle_spell_arrive_within_the_poll_interval(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "a.log"
        path.write_bytes(b"")
        items = iter(Follower([str(path)], poll_interval=0.3))
        for _ in range(6):
            pull_until_idle(items)
        write_lines(path, range(1))
        began = time.monotonic()
        assert numbers(pull_until_lines(items, 1)) == [0]
        assert time.monotonic() - began < 0.5


class TestHugeLines:
    def test_a_huge_line_arrives_in_bounded_pieces_with_flat_memory(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        size = 40 << 20
        with open(path, "wb") as f:
            f.write(b"before\n")
            for _ in range(size >> 20):
                f.write(b"x" * (1 << 20))
            f.write(b"\nafter\n")
        tracemalloc.start()
        total, pieces, notices, tail = 0, 0, [], b""
        for item in Follower([str(path)], follow=False, read_size=256 << 10, max_line_bytes=1 << 20):
            if isinstance(item, Notice):
                notices.append(item)
            elif isinstance(item, Chunk):
                total += len(item.data)
                pieces += item.partial
                tail = item.data[-20:]
                assert len(item.data) <= 1 << 20
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert total == path.stat().st_size and tail == b"\nafter\n"
        assert pieces == 40
        assert [n.kind for n in notices] == ["error"] and "offset 7 " in notices[0].message
        assert peak < 8 << 20


class TestRegistryResume:
    @pytest.mark.realworld
    def test_a_restart_with_a_rotation_in_between_loses_and_repeats_nothing(
        self, tmp_path: Path, logdir: Path, writers: Writers, logrotate: Logrotate
    ) -> None:
        log = logdir / "kamailio.log"
        registry_path = tmp_path / "registry.json"
        writer = writers.start(log, count=900, rate=300)
        logrotate.configure(log, "create", reopen_pid=writer.pid)

        registry = Registry(registry_path)
        first = Collector(
            Follower([str(log)], registry=registry, poll_interval=0.05),
            on_chunk=lambda c: registry.ack(c.identity, c.path, c.end),
        )
        first.wait_for_count(150)
        first.stop()
        registry.flush()
        logrotate.rotate()
        time.sleep(0.5)

        registry = Registry(registry_path)
        second = Collector(
            Follower([str(log)], registry=registry, poll_interval=0.05),
            on_chunk=lambda c: registry.ack(c.identity, c.path, c.end),
        )
        wait_exit(writer)
        second.wait_for_line(899)
        second.stop()
        assert first.numbers() + second.numbers() == list(range(900))
        assert any(n.kind == "rotated" and "while kamlog was stopped" in n.message for n in second.notices)

    def test_reading_once_with_a_registry_reads_only_what_is_new(self, tmp_path: Path) -> None:
        path = tmp_path / "a.log"
        registry = Registry(tmp_path / "registry.json")
        write_lines(path, range(10))
        for chunk in chunks_of(read_once(str(path), registry=registry)):
            registry.ack(chunk.identity, chunk.path, chunk.end)
        write_lines(path, range(10, 15))
        assert numbers(chunks_of(read_once(str(path), registry=registry))) == list(range(10, 15))

    def test_a_copytruncate_while_stopped_is_resumed_from_the_copy(self, tmp_path: Path, logrotate: Logrotate) -> None:
        path = tmp_path / "a.log"
        registry = Registry(tmp_path / "registry.json")
        write_lines(path, range(20))
        for chunk in chunks_of(read_once(str(path), registry=registry)):
            registry.ack(chunk.identity, chunk.path, chunk.end)
        write_lines(path, range(20, 30))
        logrotate.configure(path, "copytruncate")
        logrotate.rotate()
        write_lines(path, range(30, 35))
        items = read_once(str(path), registry=registry)
        assert numbers(chunks_of(items)) == list(range(20, 35))

    def test_a_copy_that_the_glob_matches_is_not_read_again_after_a_restart(
        self, tmp_path: Path, logrotate: Logrotate
    ) -> None:
        path = tmp_path / "a.log"
        registry = Registry(tmp_path / "registry.json")
        write_lines(path, range(20))
        pattern = f"{tmp_path}/a.log*"
        for chunk in chunks_of(read_once(pattern, registry=registry)):
            registry.ack(chunk.identity, chunk.path, chunk.end)
        logrotate.configure(path, "copytruncate")
        logrotate.rotate()
        write_lines(path, range(20, 25))
        assert numbers(chunks_of(read_once(pattern, registry=registry))) == list(range(20, 25))
