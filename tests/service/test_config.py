"""The service's TOML configuration: the example is valid, and every mistake is one sentence
naming the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kamlog.errors import ConfigError
from kamlog.service.config import load
from tests.cli_helpers import ROOT, kamlog

EXAMPLE = ROOT / "examples" / "kamlog.toml"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kamlog.toml"
    path.write_text(text)
    return str(path)


MINIMAL = '[[logs]]\npaths = ["/var/log/kamailio.log"]\n[store]\n'


class TestExampleConfig:
    def test_the_example_documents_a_valid_configuration(self) -> None:
        config = load(str(EXAMPLE))
        assert config.logs[0].paths == ("/var/log/kamailio.log",)
        assert config.store is not None and config.store.path == "/var/lib/kamlog/timeline.db"
        assert config.status == ("127.0.0.1", 9622)
        assert config.call_timeout == 32

    def test_every_commented_out_table_of_the_example_is_valid_too(self, tmp_path: Path) -> None:
        setting = re.compile(r"^# (\[.*\]|[a-z_]+ = .*)$")
        lines = [line[2:] if setting.match(line) else line for line in EXAMPLE.read_text().splitlines()]
        config = load(write(tmp_path, "\n".join(lines)))
        assert config.captures[0].pattern == "/var/spool/kamlog/sip-*.pcap"
        assert config.hep is not None and (config.hep.host, config.hep.port) == ("127.0.0.1", 9060)
        assert config.elasticsearch is not None and config.elasticsearch.spool_max_bytes == 1 << 30
        assert config.syslog is not None and (config.syslog.transport, config.syslog.port) == ("tcp", 5514)
        assert config.journald is not None and config.journald.units == ("kamailio.service",)

    def test_check_says_what_the_service_would_do(self) -> None:
        result = kamlog("collect", "--config", str(EXAMPLE), "--check")
        assert result.returncode == 0, result.stderr
        assert f"{EXAMPLE}: the configuration is valid" in result.stdout
        assert "logs: /var/log/kamailio.log (grammar detected, new files from the beginning)" in result.stdout
        assert "status: http://127.0.0.1:9622/health" in result.stdout


class TestConfigMistakes:
    @pytest.mark.parametrize("text, message", [
        (MINIMAL + "[servce]\n", "servce is not a known key"),
        (MINIMAL.replace("paths", "path"), "logs[0].path is not a known key"),
        ("[store]\n", "no source is configured: add a [[logs]], [[captures]], [journald], [syslog] or [hep] table"),
        ('[[logs]]\npaths = ["/x"]\n', "no sink is configured: add a [store] or [elasticsearch] table"),
        (MINIMAL + "[service]\ncall_timeout = \"soon\"\n", "service.call_timeout must be a number of seconds"),
        (MINIMAL + "[service]\nstatus = \"localhost\"\n", "service.status must be HOST:PORT"),
        (MINIMAL + '[elasticsearch]\nurl = "http://x:9200"\nspool_max = "lots"\n', "elasticsearch.spool_max must be a size"),
        (MINIMAL + "[hep]\nport = 9060\n", "hep.port is not a known key"),
        ('[[logs]]\npaths = []\n[store]\n', "logs[0].paths must name at least one path or glob"),
        ('[[logs]]\npaths = ["/x"]\ngrammar = "nope"\n[store]\n', "logs[0]"),
        ("[store\n", "is not valid TOML"),
    ])
    def test_a_mistake_is_one_sentence_naming_the_key(self, tmp_path: Path, text: str, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load(write(tmp_path, text))
        assert message in str(caught.value)
        assert str(tmp_path) in str(caught.value)

    def test_the_command_prints_the_mistake_as_one_error_line_and_exits_2(self, tmp_path: Path) -> None:
        path = write(tmp_path, MINIMAL + "[servce]\n")
        result = kamlog("collect", "--config", path, "--check")
        assert result.returncode == 2
        assert result.stderr == f"Error: {path}: servce is not a known key\n"

    def test_a_missing_file_is_one_error_line(self, tmp_path: Path) -> None:
        result = kamlog("collect", "--config", str(tmp_path / "none.toml"))
        assert result.returncode == 2
        assert result.stderr == f"Error: cannot read the configuration {tmp_path / 'none.toml'}: No such file or directory\n"
