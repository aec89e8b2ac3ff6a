"""`kamlog tail -n 0` with `--level` and `--call-id` on the live file a real Kamailio writes through
rsyslog: only new calls' records, only those the filter asks for, as text."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from tests.realworld.helpers import (
    ERROR_OR_WORSE, ROOT, TEXT_LINE, DiskLine, KamlogTail, Pipeline, kamailio_through_rsyslog, read_lines, text_key,
    wait_for_text,
)

pytestmark = pytest.mark.realworld

BEFORE_CALL = "before-call-1@kamlog.test"
BEFORE_UNKNOWN = "before-unknown-1@kamlog.test"
WANTED = "wanted-call-1@kamlog.test"
OTHER_CALL = "other-call-1@kamlog.test"
OTHER_UNKNOWN = "other-unknown-1@kamlog.test"
#: How kamlog's text output names the levels --level ERR lets through (-2 has no name in the log).
SHOWN_ERROR_LEVELS = {"ALERT", "BUG", "CRITICAL", "CRIT", "ERROR"}


def calls(pipeline: Pipeline, completed: str, unknown: str) -> None:
    """A completed call and a call to an unknown user (404), both logged to the end."""
    pipeline.call(completed)
    pipeline.call(unknown, scenario="uac-unknown.xml", callee="nobody")
    wait_for_text(pipeline.log_path, f"in-dialog BYE ci={completed}")
    wait_for_text(pipeline.log_path, f"user nobody not found, replying 404, Call-ID: {unknown}")


def start_after_history(pipeline: Pipeline, *args: str) -> tuple[KamlogTail, int]:
    """Calls happen, then `kamlog tail -n 0 ARGS LOG` starts; returns it and the file's size then.

    Until the new calls, Kamailio only logs its rtimer tick (INFO, no Call-ID) once a second, so
    whatever offset kamlog starts from, the records the new calls make are all after it.
    """
    calls(pipeline, BEFORE_CALL, BEFORE_UNKNOWN)
    size = pipeline.log_path.stat().st_size
    kamlog = KamlogTail("-n", "0", *args, str(pipeline.log_path))
    kamlog.wait_for_stderr(f"following {pipeline.log_path}")
    return kamlog, size


def key(line: DiskLine) -> tuple[dt.datetime, int]:
    assert line.timestamp is not None and line.pid is not None, line
    return (line.timestamp, line.pid)


class TestLevelFilterOnALiveFile:
    def test_level_err_shows_only_the_error_and_worse_records_of_calls_made_after_it_started(
        self, tmp_path: Path
    ) -> None:
        with kamailio_through_rsyslog(tmp_path, tmp_path / "log" / "kamailio.log") as pipeline:
            kamlog, size = start_after_history(pipeline, "--level", "ERR")
            with kamlog:
                calls(pipeline, WANTED, OTHER_UNKNOWN)
                pipeline.call(OTHER_CALL)
                wait_for_text(pipeline.log_path, f"in-dialog BYE ci={OTHER_CALL}")
                new = read_lines(pipeline.log_path, since=size)
                expected = [line for line in new if line.level in ERROR_OR_WORSE]
                kamlog.wait_for_lines(len(expected))
                kamlog.wait_quiet(1.0)
                assert kamlog.stop() == 130, kamlog.describe()
        shown = kamlog.lines()
        # The calls' level probes (ALERT, BUG, CRITICAL x2, level -2, ERROR per INVITE) and the 404's ERROR.
        assert len(expected) == 3 * 6 + 1
        assert Counter(map(text_key, shown)) == Counter(map(key, expected)), (
            "\n".join(shown) + "\n---\n" + "\n".join(line.text for line in expected)
        )
        for text in shown:
            m = TEXT_LINE.match(text)
            assert m is not None and m["level"] in SHOWN_ERROR_LEVELS, text
            assert BEFORE_CALL not in text and BEFORE_UNKNOWN not in text, text
        assert {cid for cid in (WANTED, OTHER_CALL, OTHER_UNKNOWN) if any(cid in t for t in shown)} == {
            WANTED, OTHER_CALL, OTHER_UNKNOWN}


class TestCallIdFilterOnALiveFile:
    def test_call_id_shows_every_record_of_that_call_and_nothing_else(self, tmp_path: Path) -> None:
        with kamailio_through_rsyslog(tmp_path, tmp_path / "log" / "kamailio.log") as pipeline:
            kamlog, size = start_after_history(pipeline, "--call-id", WANTED)
            with kamlog:
                pipeline.call(OTHER_CALL)
                calls(pipeline, WANTED, OTHER_UNKNOWN)
                new = read_lines(pipeline.log_path, since=size)
                expected = [line for line in new if WANTED in line.text]
                kamlog.wait_for_lines(len(expected))
                kamlog.wait_quiet(1.0)
                assert kamlog.stop() == 130, kamlog.describe()
        shown = kamlog.lines()
        assert len(expected) > 10
        assert Counter(map(text_key, shown)) == Counter(map(key, expected)), (
            "\n".join(shown) + "\n---\n" + "\n".join(line.text for line in expected)
        )
        for text in shown:
            assert f" {WANTED}}}" in text, text  # the Call-ID shown once, in the braces


class TestStartingAtTheEnd:
    def test_n_0_starts_after_the_last_complete_line_not_inside_a_line_being_written(
        self, tmp_path: Path
    ) -> None:
        # A writer with a buffer (rsyslog's omfile flushes 4 KiB at a time) can leave half a line
        # in the file for a moment; a reader starting then must not print its tail as a record.
        lines = (ROOT / "examples" / "kamailio.log").read_text().splitlines(keepends=True)[:6]
        log = tmp_path / "kamailio.log"
        log.write_text("".join(lines[:3]) + lines[3][:60])
        with KamlogTail("-n", "0", "--format", "json", str(log)) as kamlog:
            kamlog.wait_for_stderr(f"following {log}")
            with open(log, "a") as f:
                f.write(lines[3][60:] + lines[4])
            kamlog.wait_for_stderr("reading it as")
            kamlog.wait_quiet(0.8)
            assert kamlog.stop() == 130
        records = kamlog.records()
        assert all("error.message" not in r for r in records), records
        assert records[-1]["message"] in lines[4]
