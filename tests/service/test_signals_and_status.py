"""The service's life as an operator sees it: the status endpoint, SIGTERM's drain, SIGHUP's
reload (and a broken configuration at reload), and restarts that store nothing twice. The logs
are examples/kamailio.log, real Kamailio output, appended to while the service runs."""

from __future__ import annotations

import json
import shutil
import signal
import urllib.request
from pathlib import Path

from tests.cli_helpers import ROOT, kamlog
from tests.corpus.runners import LOOPBACK, wait_for
from tests.service.live import Collect, store_count, write_config

EXAMPLE_LOG = ROOT / "examples" / "kamailio.log"
LINES = len(EXAMPLE_LOG.read_bytes().splitlines())


def counters(collect: Collect) -> dict[str, object]:
    health = collect.health()
    assert health is not None
    return health["counters"]  # type: ignore[no-any-return]


def setup(tmp_path: Path, *, call_timeout: float = 1) -> tuple[Path, Path, Collect]:
    log = tmp_path / "kamailio.log"
    shutil.copy(EXAMPLE_LOG, log)
    store = tmp_path / "timeline.db"
    config = tmp_path / "kamlog.toml"
    port = write_config(config, tmp_path / "state", logs=[str(log)], store=store, call_timeout=call_timeout)
    return log, store, Collect(tmp_path, config, port)


class TestStatus:
    def test_health_says_running_and_counts_what_was_read_and_stored(self, tmp_path: Path) -> None:
        _, store, collect = setup(tmp_path)
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
            health = collect.health()
            assert health is not None
            assert health["state"] == "running"
            assert health["host"] == "node-a"
            c = health["counters"]
            assert (c["lines"], c["parsed"], c["unparsed"], c["waiting"], c["calls_open"]) == (LINES, LINES, 0, 0, 0)
            assert c["store_added"] == LINES
            assert c["calls_closed"] > 0
        assert store_count(store) == LINES

    def test_metrics_are_prometheus_gauges(self, tmp_path: Path) -> None:
        _, _, collect = setup(tmp_path)
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
            with urllib.request.urlopen(f"http://{LOOPBACK}:{collect.port}/metrics", timeout=5) as response:
                text = response.read().decode()
        assert f"kamlog_lines {LINES}\n" in text
        assert f"kamlog_events_stored {LINES}\n" in text
        assert 'kamlog_up{state="running"} 1\n' in text

    def test_an_unknown_path_is_404_with_a_hint(self, tmp_path: Path) -> None:
        _, _, collect = setup(tmp_path)
        with collect:
            try:
                urllib.request.urlopen(f"http://{LOOPBACK}:{collect.port}/nope", timeout=5)
                raise AssertionError("no 404")
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
                assert exc.read() == b"not found: try /health or /metrics\n"


class TestSignals:
    def test_sigterm_stores_the_calls_still_open_and_exits_0(self, tmp_path: Path) -> None:
        _, store, collect = setup(tmp_path, call_timeout=1e9)  # no call would finish by itself
        with collect:
            wait_for(lambda: counters(collect)["calls_open"] == 8, timeout=60, what="the log's 8 calls to be open")
            c = counters(collect)
            assert (c["calls_closed"], c["calls_open"]) == (0, 8)
            assert c["events_stored"] < LINES  # only the lines on no call
            assert collect.stop() == 0
        assert store_count(store) == LINES
        assert f"stopped: lines={LINES} " in collect.output
        registry = json.loads((tmp_path / "state" / "registry.json").read_text())
        assert [e["offset"] for e in registry["entries"]] == [EXAMPLE_LOG.stat().st_size]

    def test_a_restart_reads_only_what_was_appended_and_stores_nothing_twice(self, tmp_path: Path) -> None:
        log, store, collect = setup(tmp_path)
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
        with log.open("ab") as f:
            f.write(EXAMPLE_LOG.read_bytes())
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the rest to be stored")
            c = counters(collect)
            assert (c["lines"], c["store_added"], c["store_present"]) == (LINES, LINES, 0)
        assert store_count(store) == 2 * LINES

    def test_sighup_reloads_the_configuration_and_follows_a_new_log(self, tmp_path: Path) -> None:
        log, store, collect = setup(tmp_path)
        other = tmp_path / "other.log"
        lines = EXAMPLE_LOG.read_bytes().splitlines(keepends=True)
        other.write_bytes(b"".join(lines[1:] + lines[:1]))  # another first line: another source
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
            text = collect.config.read_text().replace(f'paths = ["{log}"]', f'paths = ["{log}", "{other}"]')
            collect.config.write_text(text)
            assert collect.process is not None
            collect.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in collect.output, timeout=30, what="the reload")
            wait_for(lambda: store_count(store) == 2 * LINES, timeout=60, what="the new log to be stored")
            assert collect.process.running()

    def test_a_broken_configuration_at_reload_is_reported_and_the_old_one_kept(self, tmp_path: Path) -> None:
        log, store, collect = setup(tmp_path)
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
            collect.config.write_text(collect.config.read_text() + "[servce]\n")
            assert collect.process is not None
            collect.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "keeping the configuration as it was" in collect.output, timeout=30, what="the refusal")
            with log.open("ab") as f:
                f.write(EXAMPLE_LOG.read_bytes())
            wait_for(lambda: store_count(store) == 2 * LINES, timeout=60, what="the appended lines to be stored")
        assert f"{collect.config}: servce is not a known key; keeping the configuration as it was" in collect.output


class TestLateLines:
    def test_a_line_that_comes_after_its_call_was_stored_joins_it_in_kamlog_show(self, tmp_path: Path) -> None:
        log, store, collect = setup(tmp_path)
        call = "call-busy-1@kamlog.test"
        late = next(line for line in EXAMPLE_LOG.read_bytes().splitlines(True)
                    if call.encode() in line and b"routing INVITE" in line)
        with collect:
            wait_for(lambda: counters(collect)["events_stored"] == LINES, timeout=60, what="the log to be stored")
            before = kamlog("show", "--store", str(store), call)
            with log.open("ab") as f:
                f.write(late.replace(b"routing INVITE", b"late: routing INVITE"))
            wait_for(lambda: counters(collect)["events_stored"] == LINES + 1, timeout=60, what="the late line")
        after = kamlog("show", "--store", str(store), call)
        assert after.returncode == 0, after.stderr
        assert "late: routing INVITE" not in before.stdout
        assert "late: routing INVITE" in after.stdout
        assert len(after.stdout.splitlines()) == len(before.stdout.splitlines()) + 1
