"""The watcher's diff of two scans, on plain dictionaries."""

from __future__ import annotations

from kamlog.tail.scanner import FileStat
from kamlog.tail.watcher import Created, Deleted, Renamed, Truncated, Written, diff


def st(inode: int, size: int = 10, mtime: int = 1) -> FileStat:
    return FileStat(device=1, inode=inode, size=size, mtime_ns=mtime)


class TestDiff:
    def test_identical_scans_have_no_events(self) -> None:
        scan = {"a.log": st(1), "b.log": st(2)}
        assert diff(scan, dict(scan)) == []

    def test_a_new_path_is_created(self) -> None:
        assert diff({}, {"a.log": st(1)}) == [Created("a.log", st(1))]

    def test_a_vanished_path_is_deleted(self) -> None:
        assert diff({"a.log": st(1)}, {}) == [Deleted("a.log", st(1))]

    def test_growth_is_a_write(self) -> None:
        assert diff({"a.log": st(1, 10)}, {"a.log": st(1, 20)}) == [Written("a.log", st(1, 10), st(1, 20))]

    def test_a_changed_mtime_at_the_same_size_is_a_write(self) -> None:
        assert diff({"a.log": st(1, 10, 1)}, {"a.log": st(1, 10, 2)}) == [
            Written("a.log", st(1, 10, 1), st(1, 10, 2))
        ]

    def test_shrinking_is_a_truncation(self) -> None:
        assert diff({"a.log": st(1, 10)}, {"a.log": st(1, 0)}) == [Truncated("a.log", st(1, 10), st(1, 0))]

    def test_the_same_inode_under_another_name_is_a_rename(self) -> None:
        assert diff({"a.log": st(1)}, {"a.log.1": st(1)}) == [Renamed("a.log", "a.log.1", st(1))]

    def test_rotation_by_rename_and_create_is_a_rename_then_a_creation(self) -> None:
        before = {"a.log": st(1, 500)}
        after = {"a.log": st(2, 0), "a.log-20240101": st(1, 520)}
        assert diff(before, after) == [
            Renamed("a.log", "a.log-20240101", st(1, 520)),
            Created("a.log", st(2, 0)),
        ]

    def test_a_path_replaced_by_another_inode_is_a_deletion_then_a_creation(self) -> None:
        assert diff({"a.log": st(1)}, {"a.log": st(2)}) == [Deleted("a.log", st(1)), Created("a.log", st(2))]

    def test_a_chain_of_renames_follows_each_inode(self) -> None:
        before = {"a.log": st(3), "a.log.1": st(2), "a.log.2": st(1)}
        after = {"a.log": st(4), "a.log.1": st(3), "a.log.2": st(2)}
        assert diff(before, after) == [
            Renamed("a.log", "a.log.1", st(3)),
            Renamed("a.log.1", "a.log.2", st(2)),
            Deleted("a.log.2", st(1)),
            Created("a.log", st(4)),
        ]

    def test_a_new_hard_link_is_a_creation_and_the_old_name_stays(self) -> None:
        assert diff({"a.log": st(1)}, {"a.log": st(1), "b.log": st(1)}) == [Created("b.log", st(1))]

    def test_removing_one_of_two_links_is_a_deletion_not_a_rename(self) -> None:
        assert diff({"a.log": st(1), "b.log": st(1)}, {"b.log": st(1)}) == [Deleted("a.log", st(1))]
