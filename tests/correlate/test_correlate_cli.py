"""`kamlog correlate` on damaged and missing inputs: a clear error or a counted skip."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import ROOT, kamlog

LOG = str(ROOT / "examples" / "kamailio.log")
PCAP = ROOT / "examples" / "capture.pcap"


class TestDamagedInputs:
    def test_a_capture_cut_short_gives_what_it_holds_and_says_where_it_ends(self, tmp_path: Path) -> None:
        cut = tmp_path / "cut.pcap"
        cut.write_bytes(PCAP.read_bytes()[:3000])
        done = kamlog("correlate", "--format", "json", str(cut), LOG)
        assert done.returncode == 0
        assert "cut.pcap: the last record (frame 8, at byte 2849) is incomplete" in done.stderr
        docs = [json.loads(line) for line in done.stdout.splitlines()]
        assert sum(d["event.dataset"] == "kamailio.sip" for d in docs) == 7
        assert sum(d["event.dataset"] == "kamailio.log" for d in docs) == 92  # every log line still

    def test_a_capture_whose_header_lies_is_one_error_line(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.pcap"
        bad.write_bytes(b"\xd4\xc3\xb2\xa1garbage")
        done = kamlog("correlate", "--pcap", str(bad), "--log", LOG)
        assert done.returncode == 1
        assert done.stderr.splitlines()[-1] == f"Error: {bad}: the pcap file header is cut short (11 of its 24 bytes)"
        assert "Traceback" not in done.stderr

    def test_garbage_lines_in_the_log_are_kept_as_unattributed_and_counted(self, tmp_path: Path) -> None:
        log = tmp_path / "kamailio.log"
        log.write_bytes(Path(LOG).read_bytes() + b"\xff\xfe not a kamailio line\n")
        done = kamlog("correlate", "--format", "json", str(PCAP), str(log))
        assert done.returncode == 0
        assert "1 of 93 lines matched no pattern of the grammar; they are kept as unattributed records" in done.stderr
        last = [json.loads(line) for line in done.stdout.splitlines() if "not a kamailio line" in line]
        assert last[0]["kamlog.attribution"] == "unattributed" and last[0]["sip.call_id"] is None

    def test_no_input_is_a_usage_error(self) -> None:
        done = kamlog("correlate")
        assert done.returncode == 2
        assert done.stderr == "Error: nothing to correlate: give a capture (--pcap FILE) and a log (--log FILE)\n"

    def test_a_log_without_a_capture_still_gives_the_calls_the_log_names(self) -> None:
        done = kamlog("correlate", LOG)
        assert done.returncode == 0
        assert "8 of 8 calls shown; 0 SIP messages; 92 log lines" in done.stdout
        assert "  not in the capture; 18 log lines" in done.stdout


class TestRotatedLogs:
    def test_a_rotated_set_given_as_a_glob_reads_like_the_whole_log(self, tmp_path: Path) -> None:
        import gzip

        lines = Path(LOG).read_bytes().splitlines(keepends=True)
        third = len(lines) // 3
        (tmp_path / "kamailio.log.2.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
        (tmp_path / "kamailio.log.1").write_bytes(b"".join(lines[third : 2 * third]))
        (tmp_path / "kamailio.log").write_bytes(b"".join(lines[2 * third :]))
        whole = kamlog("correlate", "--format", "json", str(PCAP), LOG)
        rotated = kamlog("correlate", "--format", "json", "--pcap", str(PCAP), "--log", str(tmp_path / "kamailio.log*"))
        assert rotated.returncode == 0, rotated.stderr
        def events(stdout: str) -> list[tuple[str | None, str, str | None]]:
            docs = [json.loads(line) for line in stdout.splitlines()]
            return [(d["kamlog.call"], d.get("message", d.get("sip.method", "")), d["@timestamp"]) for d in docs]
        assert events(rotated.stdout) == events(whole.stdout)
        paths = [json.loads(line).get("log.file.path") for line in rotated.stdout.splitlines()]
        assert str(tmp_path / "kamailio.log.2.gz") in paths and str(tmp_path / "kamailio.log") in paths


class TestProgress:
    def test_the_progress_line_shows_share_and_counts_and_is_wiped_at_the_end(self, capsys) -> None:
        from kamlog.correlate.run import Progress

        bar = Progress(1000, enabled=True)
        bar(500, 3, 40, 700)
        bar.done()
        err = capsys.readouterr().err
        assert err.startswith("\rkamlog: [###############               ]  50%  3 calls, 40 SIP messages, 700 log lines")
        assert err.endswith("\r\x1b[K")

    def test_no_progress_line_when_disabled(self, capsys) -> None:
        from kamlog.correlate.run import Progress

        bar = Progress(1000, enabled=False)
        bar(500, 3, 40, 700)
        bar.done()
        assert capsys.readouterr().err == ""
