"""The `kamlog` command as a user sees it: exact output, exit codes and error sentences."""

import json

from kamlog import __version__
from tests.cli_helpers import kamlog

EXAMPLE = "examples/kamailio.log"


class TestTopLevel:
    def test_version_prints_the_package_version(self):
        result = kamlog("--version")
        assert (result.returncode, result.stdout) == (0, f"kamlog, version {__version__}\n")

    def test_help_lists_every_command(self):
        result = kamlog("--help")
        assert result.returncode == 0
        assert "  grammars" in result.stdout and "  tail" in result.stdout


class TestTail:
    def test_the_last_records_of_a_file_are_shown_as_readable_text(self):
        result = kamlog("tail", "--no-follow", "-n", "2", EXAMPLE)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("2026-11-28 ") and " vm kamailio[" in lines[0]
        assert result.stderr == f"kamlog: {EXAMPLE}: reading it as kamailio-syslog-rfc3339\n"

    def test_level_err_shows_errors_and_everything_more_severe(self):
        result = kamlog("tail", "--no-follow", "-n", "all", "--level", "ERR", "--format", "json", EXAMPLE)
        levels = {json.loads(line)["kamailio.level"] for line in result.stdout.splitlines()}
        assert levels == {-5, -4, -3, -2, -1}

    def test_levels_are_accepted_with_or_without_l_and_as_numbers(self):
        outputs = {
            spelling: kamlog("tail", "--no-follow", "-n", "all", "--level", spelling, EXAMPLE).stdout
            for spelling in ("WARN", "warning", "L_WARN", "0")
        }
        assert len(set(outputs.values())) == 1 and outputs["WARN"]

    def test_an_unknown_level_lists_the_valid_ones_and_exits_2(self):
        result = kamlog("tail", "--level", "LOUD", EXAMPLE)
        assert result.returncode == 2
        assert result.stderr.endswith(
            "Error: Invalid value for '--level' / '-l': unknown log level 'LOUD'; valid levels are "
            "ALERT (-5), BUG (-4), CRIT2 (-3), CRIT (-2), ERR (-1), WARN (0), NOTICE (1), INFO (2), DBG (3)\n"
        )

    def test_call_id_keeps_only_that_calls_records(self):
        result = kamlog("tail", "--no-follow", "-n", "all", "--format", "json", "-c", "call-busy-1@kamlog.test", EXAMPLE)
        docs = [json.loads(line) for line in result.stdout.splitlines()]
        assert docs and {d["sip.call_id"] for d in docs} == {"call-busy-1@kamlog.test"}

    def test_json_records_carry_ecs_names_and_the_byte_offset(self):
        result = kamlog("tail", "--no-follow", "-n", "1", "--format", "json", "-c", "call-busy-1@kamlog.test", EXAMPLE)
        doc = json.loads(result.stdout)
        raw = open(EXAMPLE, "rb").read()
        line = raw[doc["log.offset"] :].split(b"\n", 1)[0].decode()
        assert doc["message"] in line and doc["@timestamp"].replace("Z", "+00:00") == line.split(" ", 1)[0]
        assert doc["event.dataset"] == "kamailio.log" and doc["log.file.path"] == EXAMPLE
        assert {"log.level", "log.logger", "process.pid", "host.hostname", "sip.cseq.code", "sip.cseq.method"} <= set(doc)

    def test_a_missing_file_without_follow_is_a_one_line_error(self):
        result = kamlog("tail", "--no-follow", "nope.log")
        assert (result.returncode, result.stdout, result.stderr) == (1, "", "Error: nope.log does not exist\n")

    def test_a_file_in_no_known_format_is_a_clear_error(self, tmp_path):
        path = tmp_path / "notes.txt"
        path.write_text("hello\nworld\n")
        result = kamlog("tail", "--no-follow", "-n", "all", str(path))
        assert result.returncode == 1
        assert result.stderr == (
            f"Error: cannot tell the log format of {path}: no grammar parses its first lines (the first is 'hello'); "
            "name one with --grammar (journald-json, kamailio-json, kamailio-stderr, kamailio-syslog-rfc3339, "
            "kamailio-syslog-rfc5424, kamailio-syslog)\n"
        )

    def test_an_unknown_grammar_is_a_usage_error(self):
        result = kamlog("tail", "--no-follow", "--grammar", "nope", EXAMPLE)
        assert result.returncode == 2 and result.stderr.startswith("Error: unknown grammar 'nope'; known grammars are ")

    def test_lines_that_match_no_pattern_are_counted_on_stderr_and_kept(self, tmp_path):
        path = tmp_path / "k.log"
        raw = open(EXAMPLE, "rb").read()
        path.write_bytes(raw + b"\xff\xfe garbage\n")
        total = raw.count(b"\n") + 1
        result = kamlog("tail", "--no-follow", "-n", "all", "--grammar", "kamailio-syslog-rfc3339", str(path))
        assert result.stdout.splitlines()[-1] == "\ufffd\ufffd garbage"
        assert result.stderr.endswith(
            f"kamlog: {path}: 1 of {total} lines matched no pattern of the grammar; "
            "they are shown as they are (with error.message in --format json)\n"
        )

    def test_output_into_a_closed_pipe_ends_quietly(self):
        import subprocess, sys

        pipeline = subprocess.run(
            f"{sys.executable} -m kamlog tail --no-follow -n all {EXAMPLE} | head -1",
            shell=True, capture_output=True, text=True, timeout=60,
        )
        assert pipeline.stdout.count("\n") == 1
        assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr


class TestGrammars:
    def test_lists_every_grammar_with_its_description(self):
        result = kamlog("grammars")
        names = [line.split()[0] for line in result.stdout.splitlines()]
        assert names == ["journald-json", "kamailio-json", "kamailio-stderr", "kamailio-syslog-rfc3339",
                         "kamailio-syslog-rfc5424", "kamailio-syslog"]

    def test_ranks_the_grammars_on_a_file(self):
        result = kamlog("grammars", EXAMPLE)
        lines = result.stdout.splitlines()
        assert lines[0] == f"{EXAMPLE}:"
        count = str(open(EXAMPLE, "rb").read().count(b"\n"))
        assert lines[1].split() == ["kamailio-syslog-rfc3339", count, "records", "in", count, "lines"]


class TestColours:
    def test_levels_are_coloured_as_kamailio_e_colours_them(self):
        result = kamlog("tail", "--no-follow", "-n", "all", "--level", "ERR", "--color", "always", EXAMPLE)
        lines = result.stdout.splitlines()
        assert any("\x1b[0;31mERROR\x1b[0m" in line for line in lines)
        assert any("\x1b[1;31mALERT\x1b[0m" in line for line in lines)
        assert any("\x1b[1;35mBUG\x1b[0m" in line for line in lines)

    def test_a_terminal_gets_colours_and_a_pipe_does_not(self):
        import os
        import pty
        import subprocess
        import sys

        from tests.cli_helpers import ROOT

        master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        process = subprocess.Popen(
            [sys.executable, "-m", "kamlog", "tail", "--no-follow", "-n", "1", "--level", "ERR", EXAMPLE],
            cwd=ROOT, stdout=slave, stderr=subprocess.DEVNULL, env=env,
        )
        os.close(slave)
        output = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=60)
        os.close(master)
        assert b"\x1b[0;31mERROR\x1b[0m" in output
        piped = subprocess.run(
            [sys.executable, "-m", "kamlog", "tail", "--no-follow", "-n", "1", "--level", "ERR", EXAMPLE],
            cwd=ROOT, capture_output=True, env=env, timeout=60,
        )
        assert piped.stdout and b"\x1b" not in piped.stdout


class TestBadPaths:
    def test_a_directory_is_an_error_that_suggests_a_glob(self):
        result = kamlog("tail", "--no-follow", "examples")
        assert (result.returncode, result.stderr) == (
            1, "Error: examples is a directory; name the log files in it, or a glob like 'examples/*.log'\n"
        )

    def test_a_binary_file_is_not_mistaken_for_a_log(self):
        result = kamlog("tail", "--no-follow", "examples/capture.pcap")
        assert result.returncode == 1 and result.stderr.startswith("Error: cannot tell the log format of examples/capture.pcap")
