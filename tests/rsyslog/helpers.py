"""What the `kamlog rsyslog` tests share: the command run as a user runs it, a private rsyslogd
whose main configuration includes the generated drop-in between a witness and a stand-in for
/var/log/syslog, and Kamailio configured with the generated kamailio.cfg lines."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cli_helpers import kamlog
from tests.corpus.runners import Kamailio, Rsyslog, RsyslogOutput

HERE = Path(__file__).resolve().parent
KAMAILIO_TEMPLATE = HERE / "kamailio.cfg"
LOGROTATE = "logrotate"
RSYSLOGD = "rsyslogd"

# `2026-11-28T10:15:13.860537+00:00 host tag[pid]: ...`: RSYSLOG_FileFormat, microseconds and zone.
PRECISE_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \S+ \S+")
# `Nov 28 10:15:13 host tag[pid]: ...`: RSYSLOG_TraditionalFileFormat.
TRADITIONAL_LINE = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \S+")


@dataclass(frozen=True)
class Generated:
    """The files `kamlog rsyslog -o DIR` wrote."""

    drop_in: Path
    logrotate: Path
    kamailio_cfg: Path


def generate(directory: Path, *args: str) -> Generated:
    """Run `kamlog rsyslog -o DIRECTORY ARGS...` and return the three files it wrote."""
    result = kamlog("rsyslog", "-o", str(directory), *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    drop_in, = directory.glob("30-*.conf")
    rotate, = directory.glob("*.logrotate")
    cfg, = directory.glob("*.cfg.snippet")
    return Generated(drop_in, rotate, cfg)


def check_config(directory: Path, drop_in: Path) -> subprocess.CompletedProcess[str]:
    """`rsyslogd -N1` on a main configuration of ours that includes ``drop_in``, as
    /etc/rsyslog.conf includes /etc/rsyslog.d/*.conf."""
    (directory / "work").mkdir(exist_ok=True)
    main = directory / "rsyslog.conf"
    main.write_text(f'global(workDirectory="{directory / "work"}")\ninclude(file="{drop_in}")\n')
    return subprocess.run([RSYSLOGD, "-N1", "-f", str(main)], capture_output=True, text=True, timeout=30)


class RsyslogWithDropIn(Rsyslog):
    """A private rsyslogd (its own socket, work directory, pid file; /dev/log untouched) whose
    main configuration is Debian's in small (its defaults: 8k messages, imuxsock's own time
    stamps): a witness that copies every message it receives, then the generated drop-in, then a
    catch-all that stands for /var/log/syslog.

    ``dedicated`` is the drop-in's --file."""

    def __init__(self, workdir: Path, drop_in: Path, dedicated: Path) -> None:
        self.witness = workdir / "witness.log"
        self.general = workdir / "general.log"
        self.dedicated = dedicated
        self.drop_in = drop_in
        # The outputs only tell the runner which directories to make: render_config names the templates.
        super().__init__(workdir, [RsyslogOutput(p, "") for p in (dedicated, self.witness, self.general)])

    def render_config(self) -> str:
        # rsyslog's own messages go through these rules (not to the host's /dev/log): tag rsyslogd.
        return f"""\
global(workDirectory="{self.dir / 'work'}" processInternalMessages="on")
main_queue(queue.timeoutShutdown="10000" queue.timeoutActionCompletion="10000")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{self.socket_path}" CreatePath="on" RateLimit.Interval="0")
*.* action(type="omfile" file="{self.witness}" template="RSYSLOG_FileFormat")
include(file="{self.drop_in}")
*.* action(type="omfile" file="{self.general}" template="RSYSLOG_TraditionalFileFormat")
"""


class KamailioByPath(Kamailio):
    """Kamailio started by its full path, as systemd's kamailio.service does: without log_name
    its syslog tag is then `/usr/sbin/kamailio[PID]`."""

    @property
    def argv(self) -> list[str]:
        argv = super().argv
        found = shutil.which(argv[0])
        assert found is not None
        return [os.path.realpath(found), *argv[1:]]


def kamailio_template(directory: Path, logging: str) -> Path:
    """The test proxy's config template with ``logging`` (kamailio.cfg lines) as its logging
    parameters; the runner fills in the rest."""
    path = directory / "kamailio.cfg.template"
    path.write_text(KAMAILIO_TEMPLATE.read_text().replace("@@LOGGING@@", logging))
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


_TAG = re.compile(r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\S+) \S+ (\S+?):? ")


def tag_of(line: str) -> str:
    """The syslog tag of an RSYSLOG_FileFormat or traditional line (with its [pid], without ':')."""
    found = _TAG.match(line)
    assert found is not None, line
    return found.group(1)


def parsed(path: Path, *args: str) -> list[dict[str, Any]]:
    """The records `kamlog tail --no-follow -n all --format json PATH` reads from a file."""
    result = kamlog("tail", "--no-follow", "-n", "all", "--format", "json", *args, str(path))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def logger(socket: Path, tag: str, facility: str, message: str, *, pid: bool = True) -> None:
    """Send one message to rsyslog's socket with util-linux logger, in syslog(3)'s local format."""
    argv = ["logger", "-u", str(socket), "-t", tag, "-p", f"{facility}.info"]
    if pid:
        argv.append("-i")
    subprocess.run([*argv, "--", message], check=True, timeout=10)


__all__ = [
    "Generated", "KamailioByPath", "PRECISE_LINE", "RsyslogWithDropIn", "TRADITIONAL_LINE", "check_config",
    "generate", "kamailio_template", "lines_of", "logger", "parsed", "tag_of",
]
