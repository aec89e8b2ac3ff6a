"""The spool keeps batches on disk durably, in order, bounded, and survives its own damage."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kamlog.service.spool import CORRUPT, Spool, SpoolError, SpoolFull
from kamlog.store.documents import Document


def batch(start: int, count: int = 3) -> list[Document]:
    return [Document(f"id{n:06d}", "kamailio.log", 1_700_000_000_000_000_000 + n, None if n % 2 else f"call{n}",
                     n, f'{{"message":"line {n} \\u00e9\\n","event.id":"id{n:06d}"}}') for n in range(start, start + count)]


def drain(spool: Spool) -> list[Document]:
    out: list[Document] = []
    while (segment := spool.oldest()) is not None:
        out.extend(segment.documents)
        spool.remove(segment)
    return out


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


class TestDurability:
    def test_a_new_spool_on_the_same_directory_finds_every_batch_put_before(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put(batch(0))
        spool.put(batch(3))
        again = Spool(str(tmp_path), 1 << 20)
        assert (again.segments, again.documents, again.size_bytes) == (2, 6, spool.size_bytes)
        assert drain(again) == batch(0, 6)

    def test_documents_come_back_exactly_as_they_were_put(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        documents = [*batch(0), Document("x", "kamailio.sip", -5, "a\tb\nc", 0, '{"q":"\\"\\r\\n\\u2028"}')]
        spool.put(documents)
        segment = Spool(str(tmp_path), 1 << 20).oldest()
        assert segment is not None and segment.documents == documents

    def test_an_empty_batch_makes_no_segment(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put([])
        assert (spool.segments, segment_files(tmp_path)) == (0, [])

    def test_a_removed_segment_stays_removed_after_a_restart(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put(batch(0))
        spool.put(batch(3))
        first = spool.oldest()
        assert first is not None
        spool.remove(first)
        assert drain(Spool(str(tmp_path), 1 << 20)) == batch(3)

    def test_the_directory_is_created_when_missing(self, tmp_path: Path) -> None:
        Spool(str(tmp_path / "a" / "b"), 1 << 20).put(batch(0))
        assert len(segment_files(tmp_path / "a" / "b")) == 1

    def test_a_directory_that_cannot_be_made_is_one_error_naming_it(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("")
        with pytest.raises(SpoolError, match=f"cannot open the spool directory {tmp_path}/file/spool"):
            Spool(str(tmp_path / "file" / "spool"), 1 << 20)


class TestOrder:
    def test_segments_come_out_oldest_first(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        for n in range(12):
            spool.put(batch(n * 3))
        assert drain(spool) == batch(0, 36)

    def test_the_order_holds_across_restarts_with_new_batches_after_the_old(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        for n in range(10):
            spool.put(batch(n * 3))
        for _ in range(3):
            segment = spool.oldest()
            assert segment is not None
            spool.remove(segment)
        again = Spool(str(tmp_path), 1 << 20)
        again.put(batch(30))
        assert drain(again) == batch(9, 24)

    def test_puts_from_several_threads_all_arrive_each_batch_whole(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 30)

        def put(first: int) -> None:
            for n in range(first, first + 20):
                spool.put(batch(n * 3))

        threads = [threading.Thread(target=put, args=(k * 20,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        segments = []
        while (segment := spool.oldest()) is not None:
            segments.append(segment.documents)
            spool.remove(segment)
        assert sorted(segments) == [batch(n * 3) for n in range(80)]

    def test_the_on_put_callback_runs_after_each_put(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        seen: list[int] = []
        spool.on_put = lambda: seen.append(spool.segments)
        spool.put(batch(0))
        spool.put(batch(3))
        assert seen == [1, 2]


class TestBound:
    def test_a_full_spool_refuses_a_batch_with_spool_full(self, tmp_path: Path) -> None:
        one = len(Path(self._put_one(tmp_path)).read_bytes())
        spool = Spool(str(tmp_path), one + 1)
        spool.put(batch(3))
        assert not spool.has_room()
        with pytest.raises(SpoolFull, match=f"the spool {tmp_path} is full .* reading pauses"):
            spool.put(batch(6))
        assert spool.segments == 2

    def test_the_spool_never_holds_more_than_its_maximum_and_one_batch(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1000)
        refused = 0
        for n in range(50):
            try:
                spool.put(batch(n * 3))
            except SpoolFull:
                refused += 1
            on_disk = sum(p.stat().st_size for p in segment_files(tmp_path))
            assert on_disk == spool.size_bytes < 1000 + 600
        assert refused > 0

    def test_a_spool_with_room_again_takes_batches_again(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1)
        spool.put(batch(0))
        with pytest.raises(SpoolFull):
            spool.put(batch(3))
        segment = spool.oldest()
        assert segment is not None
        spool.remove(segment)
        assert spool.has_room() and spool.size_bytes == 0
        spool.put(batch(3))
        assert drain(spool) == batch(3)

    def test_a_restarted_spool_counts_what_it_holds_against_the_bound(self, tmp_path: Path) -> None:
        Spool(str(tmp_path), 1).put(batch(0))
        with pytest.raises(SpoolFull):
            Spool(str(tmp_path), 1).put(batch(3))

    def test_a_maximum_of_zero_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SpoolError, match="must be positive, not 0"):
            Spool(str(tmp_path), 0)

    @staticmethod
    def _put_one(tmp_path: Path) -> str:
        Spool(str(tmp_path), 1 << 20).put(batch(0))
        return str(segment_files(tmp_path)[0])


class TestDamage:
    def test_a_temporary_file_a_crash_left_is_removed_and_ignored(self, tmp_path: Path) -> None:
        Spool(str(tmp_path), 1 << 20).put(batch(0))
        torn = tmp_path / "00000000000000000001.seg.tmp"
        torn.write_bytes(b"KAMLOG-SPOOL-1 3 900 abc\n[\"id")
        spool = Spool(str(tmp_path), 1 << 20)
        assert not torn.exists()
        assert spool.segments == 1 and drain(spool) == batch(0)

    @pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty", "not a segment", "extra bytes"])
    def test_a_damaged_segment_is_moved_aside_counted_and_the_next_one_comes(self, tmp_path: Path, damage: str) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put(batch(0))
        spool.put(batch(3))
        first = segment_files(tmp_path)[0]
        data = first.read_bytes()
        damaged = {"truncated": data[: len(data) - 10], "flipped byte": data[:-20] + b"X" + data[-19:],
                   "empty": b"", "not a segment": b"\xff\xfe garbage\n", "extra bytes": data + b"[1]\n"}[damage]
        first.write_bytes(damaged)
        spool = Spool(str(tmp_path), 1 << 20)
        assert drain(spool) == batch(3)
        assert spool.corrupt == 1
        assert (tmp_path / CORRUPT / first.name).read_bytes() == damaged
        assert spool.last_corrupt is not None and spool.last_corrupt.startswith(f"the spool segment {first} ")
        assert (spool.segments, spool.size_bytes, spool.documents) == (0, 0, 0)

    def test_a_segment_whose_checksum_matches_but_holds_no_documents_is_moved_aside(self, tmp_path: Path) -> None:
        from hashlib import blake2b

        body = b'["only five", "fields", 1, null, 0]\n'
        digest = blake2b(body, digest_size=16).hexdigest().encode()
        (tmp_path / "00000000000000000007.seg").write_bytes(b"KAMLOG-SPOOL-1 1 %d %s\n%s" % (len(body), digest, body))
        spool = Spool(str(tmp_path), 1 << 20)
        assert spool.oldest() is None
        assert spool.corrupt == 1 and spool.last_corrupt is not None and "line 1 that is not a document" in spool.last_corrupt

    def test_a_segment_that_cannot_be_read_is_moved_aside(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put(batch(0))
        spool.put(batch(3))
        first = segment_files(tmp_path)[0]
        first.unlink()
        first.mkdir()
        assert drain(spool) == batch(3)
        assert spool.corrupt == 1 and (tmp_path / CORRUPT / first.name).is_dir()

    def test_a_segment_deleted_behind_the_spools_back_is_skipped(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        spool.put(batch(0))
        spool.put(batch(3))
        segment_files(tmp_path)[0].unlink()
        assert drain(spool) == batch(3) and spool.corrupt == 0

    def test_a_second_corrupt_segment_of_the_same_name_keeps_the_first(self, tmp_path: Path) -> None:
        for round in range(2):
            spool = Spool(str(tmp_path), 1 << 20)
            spool.put(batch(0))
            segment_files(tmp_path)[0].write_bytes(b"junk %d" % round)
            assert spool.oldest() is None
        assert sorted(p.read_bytes() for p in (tmp_path / CORRUPT).iterdir()) == [b"junk 0", b"junk 1"]

    def test_files_that_are_not_segments_are_left_alone(self, tmp_path: Path) -> None:
        (tmp_path / "README").write_text("hello")
        (tmp_path / "12.seg").write_text("short name")
        spool = Spool(str(tmp_path), 1 << 20)
        assert spool.segments == 0 and spool.oldest() is None
        assert (tmp_path / "README").exists() and (tmp_path / "12.seg").exists()

    def test_a_disk_that_cannot_take_the_segment_says_so_and_leaves_nothing(self, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path), 1 << 20)
        (tmp_path / "00000000000000000000.seg.tmp").mkdir()  # the temporary name is taken
        with pytest.raises(SpoolError, match="cannot write the spool segment"):
            spool.put(batch(0))
        assert spool.segments == 0 and segment_files(tmp_path) == []

    def test_a_full_disk_is_a_full_spool_and_leaves_nothing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import errno

        spool = Spool(str(tmp_path), 1 << 20)

        def no_space(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", no_space)
        with pytest.raises(SpoolFull, match=f"the disk under the spool {tmp_path} is full"):
            spool.put(batch(0))
        monkeypatch.undo()
        assert spool.segments == 0 and list(tmp_path.iterdir()) == []
