"""The generated drop-in in a real rsyslogd with a real Kamailio logging through it under SIPp
traffic: every line Kamailio logs is in the dedicated file, in the precise format kamlog reads,
and none in the general log, with log_name or without it; and the generated logrotate file, run
by the real logrotate, rotates the file under rsyslog without losing or misplacing a line."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.corpus.runners import LOOPBACK, Kamailio, MountNamespace, RunnerError, Sipp, free_port, wait_for
from tests.rsyslog.helpers import (
    LOGROTATE, PRECISE_LINE, KamailioByPath, RsyslogWithDropIn, generate, kamailio_template, lines_of, logger,
    parsed, tag_of,
)

pytestmark = pytest.mark.realworld

EVERY_LEVEL = {"ALERT", "BUG", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}


@dataclass
class Proxy:
    """Kamailio logging through our rsyslogd, with a SIPp UAS registered behind it."""

    rsyslog: RsyslogWithDropIn
    kamailio: Kamailio
    workdir: Path
    uas_port: int

    def call(self, call_id: str) -> None:
        """One completed call (INVITE, 200, ACK, BYE) through Kamailio to the UAS."""
        with Sipp(self.workdir, "uas-answer.xml", local_port=self.uas_port, calls=1,
                  name=f"uas-{call_id}") as uas:
            caller = Sipp(self.workdir, "uac-call.xml", remote=(LOOPBACK, self.kamailio.sip_port),
                          keys={"callee": "answer"}, call_id=call_id, name=f"uac-{call_id}").run()
            assert caller.ok, caller.output[-2000:]
            assert uas.finish().ok


@contextlib.contextmanager
def proxy(workdir: Path, rsyslog: RsyslogWithDropIn, logging: str, *, by_path: bool = False) -> Iterator[Proxy]:
    """Start ``rsyslog``, then Kamailio in syslog mode (its /dev/log is rsyslog's socket, in a
    mount namespace of its own) with ``logging`` as its logging parameters; register a UAS."""
    runner = KamailioByPath if by_path else Kamailio
    with rsyslog, MountNamespace(workdir, rsyslog.socket_path) as ns, \
            runner(workdir, log_target="syslog", namespace=ns, debug=3,
                   config_template=kamailio_template(workdir, logging)) as kamailio:
        uas_port = free_port()
        registered = Sipp(workdir, "register.xml", remote=(LOOPBACK, kamailio.sip_port),
                          call_id="register-answer@kamlog.test", keys={"user": "answer", "contact_port": uas_port},
                          name="register").run()
        if not registered.ok:
            raise RunnerError(f"REGISTER failed: {registered.output[-2000:]}")
        yield Proxy(rsyslog, kamailio, workdir, uas_port)


def kamailio_lines(rsyslog: RsyslogWithDropIn) -> list[str]:
    """What Kamailio logged, as the witness (a rule before the drop-in) received it."""
    others = {"rsyslogd", "cron"}
    return [line for line in lines_of(rsyslog.witness) if tag_of(line).split("[")[0] not in others]


def check_delivery(rsyslog: RsyslogWithDropIn, dedicated: list[str], tags: set[str]) -> None:
    """Every line Kamailio logged is in ``dedicated`` (in order, as received) and none in the
    general log, which did get the other program's line."""
    logged = kamailio_lines(rsyslog)
    assert {tag_of(line).split("[")[0] for line in logged} == tags
    assert len(logged) > 500
    assert dedicated == logged
    general = [line for line in lines_of(rsyslog.general) if not tag_of(line).startswith("rsyslogd")]
    assert len(general) == 1 and general[0].endswith(" cron[1]: not Kamailio's"), general


class TestKamailioThroughTheDropIn:
    def test_every_line_kamailio_logs_is_in_the_dedicated_file_in_the_precise_format_and_none_in_the_general_log(
            self, tmp_path):
        dedicated = tmp_path / "log" / "kamailio.log"
        generated = generate(tmp_path / "out", "--file", str(dedicated))
        rsyslog = RsyslogWithDropIn(tmp_path, generated.drop_in, dedicated)
        with proxy(tmp_path, rsyslog, generated.kamailio_cfg.read_text()) as p:
            p.call("call-precise-1@kamlog.test")
            logger(rsyslog.socket_path, "cron[1]", "cron", "not Kamailio's", pid=False)
        # Kamailio, then rsyslogd have stopped: everything logged is written.
        lines = lines_of(dedicated)
        check_delivery(rsyslog, lines, {"kamailio"})
        assert all(PRECISE_LINE.match(line) for line in lines)

        records = parsed(dedicated)
        assert len(records) == len(lines)
        assert {r["kamailio.grammar"] for r in records} == {"kamailio-syslog-rfc3339"}
        assert not [r for r in records if "error.message" in r]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)", r["@timestamp"])
                   for r in records)
        assert EVERY_LEVEL <= {r["log.level"] for r in records}
        # The generated log_prefix carries the Call-ID and CSeq of the message being handled.
        invite = [r for r in records if r.get("kamailio.log_prefix") == "{1 1 INVITE call-precise-1@kamlog.test} "]
        assert invite and {r["sip.call_id"] for r in invite} == {"call-precise-1@kamlog.test"}
        assert {r["sip.cseq.method"] for r in invite} == {"INVITE"}

    def test_a_kamailio_without_log_name_nor_facility_tagged_with_its_path_is_caught_by_its_tag(self, tmp_path):
        # kamailio.cfg not edited yet: facility LOG_DAEMON, no log_name; started by its path as
        # systemd starts it, so its tag is /usr/sbin/kamailio[PID] and rsyslog's $programname is empty.
        dedicated = tmp_path / "log" / "kamailio.log"
        generated = generate(tmp_path / "out", "--file", str(dedicated))
        rsyslog = RsyslogWithDropIn(tmp_path, generated.drop_in, dedicated)
        with proxy(tmp_path, rsyslog, "", by_path=True) as p:
            path = p.kamailio.argv[0]
            p.call("call-path-1@kamlog.test")
            logger(rsyslog.socket_path, "cron[1]", "cron", "not Kamailio's", pid=False)
        lines = lines_of(dedicated)
        # glibc tags what Kamailio logs before openlog() with its short name, `kamailio:`.
        check_delivery(rsyslog, lines, {path, "kamailio"})
        records = parsed(dedicated)
        assert len(records) == len(lines) and not [r for r in records if "error.message" in r]
        assert any("call-path-1@kamlog.test" in r["message"] for r in records if r["process.name"] == path)


def rotate(conf: Path, state: Path) -> None:
    result = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(conf)], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` (that very file, by device and inode) open."""
    target = os.stat(path)
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(FileNotFoundError):
            found = os.stat(fd)
            if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                return True
    return False


def lines_with(lines: list[str], call_id: str) -> list[str]:
    return [line for line in lines if call_id in line]


class TestLogrotate:
    def test_two_rotations_keep_every_line_once_in_order_and_rsyslog_writes_each_new_file(self, tmp_path):
        dedicated = tmp_path / "log" / "kamailio.log"
        rsyslog = RsyslogWithDropIn(tmp_path, tmp_path / "out" / "30-kamailio.conf", dedicated)
        generated = generate(tmp_path / "out", "--file", str(dedicated),
                             "--postrotate", f"kill -HUP $(cat {shlex.quote(str(rsyslog.pid_file))})")
        state = tmp_path / "logrotate.state"
        first, second = dedicated.with_name("kamailio.log.1"), dedicated.with_name("kamailio.log.2.gz")
        with proxy(tmp_path, rsyslog, generated.kamailio_cfg.read_text()) as p:
            p.call("call-rotate-1@kamlog.test")
            for n, rotated in ((2, first), (3, first)):
                wait_for(lambda: holds_open(rsyslog.pid, dedicated), timeout=10, what="rsyslog to write the file")
                rotate(generated.logrotate, state)
                # The postrotate HUP made rsyslog close the rotated file; what comes next goes
                # to the file logrotate created.
                wait_for(lambda: not holds_open(rsyslog.pid, rotated), timeout=10,
                         what="rsyslog to close the rotated file after logrotate's HUP")
                created = os.stat(dedicated)
                p.call(f"call-rotate-{n}@kamlog.test")
                assert os.stat(dedicated).st_ino == created.st_ino
            logger(rsyslog.socket_path, "cron[1]", "cron", "not Kamailio's", pid=False)

        oldest = gzip.decompress(second.read_bytes()).decode(errors="replace").splitlines()
        middle, live = lines_of(first), lines_of(dedicated)
        check_delivery(rsyslog, oldest + middle + live, {"kamailio"})
        assert sorted(p.name for p in dedicated.parent.iterdir()) == [
            "kamailio.log", "kamailio.log.1", "kamailio.log.2.gz"]
        witness = kamailio_lines(rsyslog)
        for n, part in ((1, oldest), (2, middle), (3, live)):
            call_id = f"call-rotate-{n}@kamlog.test"
            assert lines_with(witness, call_id) and lines_with(part, call_id) == lines_with(witness, call_id)
        assert os.stat(first).st_mode == os.stat(dedicated).st_mode
