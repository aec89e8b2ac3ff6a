"""The scanner: patterns to files."""

from __future__ import annotations

from pathlib import Path

from kamlog.tail.scanner import Scanner, watch_directory


class TestScanner:
    def test_a_glob_finds_files_in_name_order_and_skips_compressed_ones(self, tmp_path: Path) -> None:
        for name in ("b.log", "a.log", "a.log.1.gz", "c.txt"):
            (tmp_path / name).write_text("x\n")
        (tmp_path / "d.log").mkdir()
        scan = Scanner([f"{tmp_path}/*.log*"]).scan()
        assert list(scan.files) == [f"{tmp_path}/a.log", f"{tmp_path}/b.log"]

    def test_a_file_named_twice_is_listed_once_under_the_first_pattern(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_text("x\n")
        scan = Scanner([f"{tmp_path}/a.log", f"{tmp_path}/*.log"]).scan()
        assert scan.pattern_of == {f"{tmp_path}/a.log": f"{tmp_path}/a.log"}

    def test_patterns_that_find_nothing_say_why(self, tmp_path: Path) -> None:
        scan = Scanner([f"{tmp_path}/missing.log", f"{tmp_path}/*.log", str(tmp_path)]).scan()
        assert scan.missing == {
            f"{tmp_path}/missing.log": f"{tmp_path}/missing.log does not exist",
            f"{tmp_path}/*.log": f"no file matches {tmp_path}/*.log",
            str(tmp_path): f"{tmp_path} is not a regular file",
        }

    def test_the_watched_directory_is_the_part_before_any_glob(self) -> None:
        assert watch_directory("/var/log/kamailio/*.log") == ("/var/log/kamailio", False)
        assert watch_directory("/var/log/*/kamailio.log") == ("/var/log", True)
        assert watch_directory("kamailio.log") == (".", False)
        assert watch_directory("*/kamailio.log") == (".", True)
