"""`kamlog collect` run for real: Kamailio logging through rsyslog into a file, SIPp calls through
it, tcpdump rotating its captures every 2 s, and faults on the way (logrotate mid-call, kill -9
of kamlog, a restart). The store must end with exactly the events `kamlog index` finds in the
same files read whole afterwards: none lost, none twice."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.corpus.runners import syslog_pipeline, wait_for
from tests.service.live import Collect, RotatingTcpdump, assert_stored_exactly, expected_ids, store_ids, write_config

pytestmark = pytest.mark.realworld


def logrotate(workdir: Path, log: Path, pid_file: Path) -> None:
    """Real logrotate, create strategy, rsyslog told by HUP (as deploy/rsyslog's file does)."""
    conf = workdir / "logrotate.conf"
    conf.write_text(f"""\
{log} {{
    rotate 5
    create 0640 root root
    missingok
    postrotate
        kill -HUP $(cat {pid_file})
    endscript
}}
""")
    subprocess.run(["logrotate", "-f", "-s", str(workdir / "logrotate.state"), str(conf)], check=True, timeout=30)


def run_for(seconds: float, collect: Collect) -> None:
    """Let traffic flow while checking that the service stays up (bounded)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert collect.health() is not None or collect.process.running()  # type: ignore[union-attr]
        time.sleep(0.2)


def stored(collect: Collect) -> int:
    health = collect.health()
    return 0 if health is None else int(health["counters"]["events_stored"])


class TestCollectSurvivesFaults:
    def test_store_ends_with_every_event_once_after_logrotate_kill_and_restart(self, tmp_path: Path) -> None:
        log = tmp_path / "log" / "kamailio.log"
        captures = tmp_path / "captures"
        captures.mkdir()
        store = tmp_path / "timeline.db"
        config = tmp_path / "kamlog.toml"
        port = write_config(config, tmp_path / "state", logs=[str(log)], captures=f"{captures}/sip-*.pcap",
                            store=store)
        with syslog_pipeline(tmp_path, log, template="RSYSLOG_FileFormat", rate=4, debug=3) as pipe:
            with RotatingTcpdump(tmp_path, captures, [pipe.kamailio.sip_port, pipe.uas.local_port]) as dump:
                collect = Collect(tmp_path, config, port)
                with collect:
                    run_for(3, collect)
                    logrotate(tmp_path, log, pipe.rsyslog.pid_file)  # mid-call: calls run all the time
                    run_for(3, collect)
                    wait_for(lambda: stored(collect) > 0, timeout=60, what="the first calls to be stored")
                    collect.kill()  # with calls open, records waiting and some stored
                    run_for_dead = time.monotonic() + 2
                    while time.monotonic() < run_for_dead:
                        time.sleep(0.2)
                    collect.start()  # resumes from its registry
                    run_for(3, collect)
                    assert pipe.uac is not None
                    pipe.uac.stop()
                    time.sleep(1)  # the last BYEs and their log lines
                    dump.stop()
                    pipe.kamailio.stop()  # its timers log too: the files must be final
                    pipe.rsyslog.drain()
                    files = [log.with_name("kamailio.log.1"), log]
                    pcaps = sorted(captures.glob("sip-*.pcap"))
                    want = expected_ids(tmp_path, files, pcaps)
                    wait_for(lambda: store_ids(store) >= want, timeout=90,
                             what="kamlog collect to store every event of the logs and captures")
                    assert collect.stop() == 0, collect.output
        assert_stored_exactly(store, want)
        assert len(pcaps) >= 4  # tcpdump did rotate, several times
        output = collect.output
        assert "Traceback" not in output, output
        assert "collecting: logs" in output
        assert "stopped: lines=" in output
        # The second run read again what the first had not yet stored, and no more than that.
        assert "while kamlog was stopped" in output or "where it was left" in output
