"""File identity: inode + device and a fingerprint of the first bytes."""

from __future__ import annotations

import os
from pathlib import Path

from kamlog.tail.identity import HEAD_SIZE, FileIdentity


def identity_of(path: Path) -> FileIdentity:
    fd = os.open(path, os.O_RDONLY)
    try:
        return FileIdentity.of(os.fstat(fd), os.pread(fd, HEAD_SIZE, 0))
    finally:
        os.close(fd)


class TestFileIdentity:
    def test_it_names_the_inode_and_the_device(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"hello\n")
        st = path.stat()
        assert identity_of(path).key == (st.st_dev, st.st_ino)

    def test_the_fingerprint_covers_at_most_the_first_1024_bytes(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"a" * 5000)
        assert identity_of(path).head_size == 1024
        path.write_bytes(b"abc")
        assert identity_of(path).head_size == 3

    def test_a_longer_head_that_starts_the_same_still_matches(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"first line\n")
        small = identity_of(path)
        assert small.matches(b"first line\nsecond line\n")
        assert not small.matches(b"first lin")
        assert not small.matches(b"other line\nsecond line\n")

    def test_a_rewritten_file_under_the_same_inode_has_another_fingerprint(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"old content\n" * 200)
        before = identity_of(path)
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(b"new content\n" * 200)
        after = identity_of(path)
        assert before.key == after.key and before != after
        assert not before.matches(path.read_bytes()[:HEAD_SIZE])
