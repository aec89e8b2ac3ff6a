"""tail_offset against tail(1) itself, and end_of_last_line."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from kamlog.tail import tail_offset
from kamlog.tail.offsets import end_of_last_line


def tail_n(path: Path, n: int) -> bytes:
    return subprocess.run(["tail", "-n", str(n), str(path)], capture_output=True, check=True).stdout


CASES = [b"", b"\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"\n\n\n", b"one\n\ntwo\nthree"]


class TestTailOffset:
    @pytest.mark.parametrize("content", CASES)
    @pytest.mark.parametrize("n", [0, 1, 2, 3, 10])
    def test_the_bytes_from_the_offset_are_what_tail_prints(self, tmp_path: Path, content: bytes, n: int) -> None:
        path = tmp_path / "f"
        path.write_bytes(content)
        assert content[tail_offset(str(path), n) :] == tail_n(path, n)

    def test_lines_spanning_many_blocks_are_counted_like_tail_does(self, tmp_path: Path) -> None:
        rng = random.Random(7)
        path = tmp_path / "f"
        path.write_bytes(b"".join(b"x" * rng.randrange(0, 300) + b"\n" for _ in range(2000)) + b"tail")
        for n in (1, 5, 99, 1000, 2000, 2001, 5000):
            offset = tail_offset(str(path), n, block=128)
            assert path.read_bytes()[offset:] == tail_n(path, n)

    def test_a_negative_count_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_bytes(b"a\n")
        with pytest.raises(ValueError, match="0 or more"):
            tail_offset(str(tmp_path / "f"), -1)


class TestEndOfLastLine:
    @pytest.mark.parametrize(
        ("content", "expected"), [(b"", 0), (b"abc", 0), (b"a\nb", 2), (b"a\nb\n", 4), (b"a\n" + b"b" * 300, 2)]
    )
    def test_it_is_just_after_the_last_newline(self, tmp_path: Path, content: bytes, expected: int) -> None:
        path = tmp_path / "f"
        path.write_bytes(content)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert end_of_last_line(fd, len(content), block=7) == expected
        finally:
            os.close(fd)
