"""The README is the user's manual: every command is in it, and every example is real output."""

from __future__ import annotations

import re
import shlex

import pytest

from kamlog.cli import cli
from tests.cli_helpers import ROOT, kamlog

README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```console\n(.*?)```", README, re.S)


# The file's device and inode are this machine's: compared as placeholders.
_FILE_ID = re.compile(r'("log\.file\.(?:device_id|inode)":)"\d+"')


def same_output(shown: str, documented: str) -> bool:
    return _FILE_ID.sub(r'\1"N"', shown) == _FILE_ID.sub(r'\1"N"', documented)


def examples() -> list[tuple[str, str]]:
    found = []
    for block in EXAMPLES:
        command, _, output = block.partition("\n")
        assert command.startswith("$ kamlog "), command
        found.append((command[2:], output))
    return found


CLUSTER = "http://localhost:9200"


@pytest.fixture(scope="session")
def readme_home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def readme_es():
    from tests.elastic.server import VERSIONS, start

    server = start(VERSIONS[0])
    yield server
    server.stop()


class TestReadme:
    @pytest.mark.parametrize("name", sorted(cli.commands))
    def test_every_command_has_a_section_and_a_real_example(self, name):
        assert f"### kamlog {name}\n" in README
        assert any(command.startswith(f"kamlog {name}") for command, _ in examples())

    @pytest.mark.parametrize("name", sorted(cli.commands))
    def test_every_option_of_every_command_is_in_the_readme(self, name):
        command = cli.commands[name]
        commands = list(getattr(command, "commands", {}).values()) or [command]
        options = [opt for c in commands for param in c.params for opt in param.opts + param.secondary_opts]
        missing = [opt for opt in options if opt.startswith("--") and opt not in README and opt != "--help"]
        assert missing == []

    @pytest.mark.parametrize(("command", "output"), examples(), ids=[c for c, _ in examples()])
    def test_the_example_prints_what_the_readme_shows(self, command, output, request, readme_home):
        # The embedded store's examples write under a home of the session's own; the cluster's
        # go to a real Elasticsearch started for them, shown as http://localhost:9200.
        env = {"HOME": str(readme_home), "KAMLOG_STORE": "", "XDG_DATA_HOME": ""}
        url = None
        if CLUSTER in command:
            url = request.getfixturevalue("readme_es").url
            command = command.replace(CLUSTER, url)
        result = kamlog(*shlex.split(command)[1:], env=env)
        shown = result.stderr + result.stdout
        if url is not None:
            command, shown = command.replace(url, CLUSTER), shown.replace(url, CLUSTER)
        if request.config.getoption("--update-readme") and not same_output(shown, output):
            text = (ROOT / "README.md").read_text()
            old = f"```console\n$ {command}\n{output}```"
            assert text.count(old) == 1, f"example {command!r} is not unique in README.md"
            (ROOT / "README.md").write_text(text.replace(old, f"```console\n$ {command}\n{shown}```"))
            output = shown
        assert same_output(shown, output), (shown, output)

    def test_the_first_setup_command_installs_and_reads_the_example(self):
        assert (
            "python3 -m venv .venv && . .venv/bin/activate && pip install . && "
            "kamlog correlate examples/capture.pcap examples/kamailio.log\n" in README
        )
        result = kamlog("correlate", "examples/capture.pcap", "examples/kamailio.log")
        assert result.returncode == 0
        assert result.stderr == "kamlog: examples/kamailio.log: reading it as kamailio-syslog-rfc3339\n"
        assert result.stdout.count("\nCall ") + result.stdout.startswith("Call ") == 8
        assert "8 of 8 calls shown; 44 SIP messages; 92 log lines: " in result.stdout

    def test_ci_runs_the_test_command_the_readme_gives(self):
        assert "```sh\nbash tests/run\n```" in README
        assert "exec bash tests/run" in (ROOT / ".ci" / "run").read_text()
