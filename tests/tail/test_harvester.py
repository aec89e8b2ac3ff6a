"""The harvester: whole lines in large chunks, long lines in bounded pieces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kamlog.tail.harvester import Harvester
from kamlog.tail.items import Chunk, Notice


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[Path, list[Harvester]]]:
    made: list[Harvester] = []
    yield tmp_path / "f.log", made
    for h in made:
        h.close()


def harvester(path: Path, made: list[Harvester], **options: int) -> Harvester:
    h = Harvester.open(str(path), **options)
    made.append(h)
    return h


def read_all(h: Harvester) -> list[Chunk | Notice]:
    h.check()
    return list(h.harvest(h.size))


class TestHarvest:
    def test_a_chunk_holds_whole_lines_and_the_unterminated_one_waits(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"one\ntwo\nthr")
        h = harvester(path, made)
        assert read_all(h) == [Chunk(str(path), h.identity, 0, b"one\ntwo\n")]
        assert (h.offset, h.read_pos) == (8, 11)
        with open(path, "ab") as f:
            f.write(b"ee\nfour\n")
        h.check()
        assert read_all(h) == [Chunk(str(path), h.identity, 8, b"three\nfour\n")]

    def test_chunks_are_at_most_read_size_and_never_cut_a_line(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        content = b"".join(b"%05d\n" % i for i in range(1000))
        path.write_bytes(content)
        h = harvester(path, made, read_size=64)
        chunks = [c for c in read_all(h) if isinstance(c, Chunk)]
        assert b"".join(c.data for c in chunks) == content
        assert all(len(c.data) <= 64 and c.data.endswith(b"\n") for c in chunks)
        assert [c.offset for c in chunks] == [sum(len(c.data) for c in chunks[:i]) for i in range(len(chunks))]

    def test_finish_delivers_the_unterminated_last_line_as_partial(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"one\ntw")
        h = harvester(path, made)
        read_all(h)
        assert h.finish() == Chunk(str(path), h.identity, 4, b"tw", partial=True)
        assert h.finish() is None


class TestLongLines:
    def test_a_line_longer_than_the_limit_comes_in_pieces_with_one_notice(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"short\n" + b"L" * 2500 + b"\nnext\n")
        h = harvester(path, made, read_size=700, max_line_bytes=1000)
        items = read_all(h)
        notices = [i for i in items if isinstance(i, Notice)]
        chunks = [i for i in items if isinstance(i, Chunk)]
        assert [(n.kind, n.message) for n in notices] == [
            ("error", f"the line at offset 6 of {path} is longer than 1000 bytes; it is delivered in pieces of at most 1000 bytes")
        ]
        assert b"".join(c.data for c in chunks) == path.read_bytes()
        assert all(len(c.data) <= 1000 for c in chunks)
        assert [(c.offset, len(c.data), c.partial) for c in chunks if c.partial] == [(6, 1000, True), (1006, 1000, True)]

    def test_a_line_of_exactly_the_limit_is_not_cut(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"L" * 999 + b"\n")
        h = harvester(path, made, max_line_bytes=1000)
        assert read_all(h) == [Chunk(str(path), h.identity, 0, b"L" * 999 + b"\n")]


class TestCheck:
    def test_growth_is_no_change_and_extends_the_fingerprint(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"a\n")
        h = harvester(path, made)
        with open(path, "ab") as f:
            f.write(b"b\n")
        assert h.check() is None
        assert h.identity.head_size == 4

    def test_a_file_cut_shorter_than_what_was_read_shrank(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"a\nb\nc\n")
        h = harvester(path, made)
        read_all(h)
        with open(path, "r+b") as f:
            f.truncate(2)
        assert h.check() == "shrank"

    def test_a_file_whose_first_bytes_changed_was_rewritten(self, opened: tuple[Path, list[Harvester]]) -> None:
        path, made = opened
        path.write_bytes(b"old\n")
        h = harvester(path, made)
        read_all(h)
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(b"new content, longer than before\n")
        assert h.check() == "rewritten"
