"""deploy/systemd/kamlog.service: systemd accepts it, and the one capability it grants is what an
unprivileged user needs to collect a log only root may read (and without it, it cannot)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT
from tests.service.test_signals_and_status import EXAMPLE_LOG, LINES
from tests.service.live import store_count

UNIT = ROOT / "deploy" / "systemd" / "kamlog.service"


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def as_nobody(capabilities: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    """kamlog collect as `nobody` with only `capabilities`, as systemd starts it, for 5 s."""
    caps = ",".join(f"+{c.lower().removeprefix('cap_')}" for c in capabilities)
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if caps:
        argv += [f"--inh-caps={caps}", f"--ambient-caps={caps}", f"--bounding-set=-all,{caps}"]
    else:
        argv += ["--bounding-set=-all"]
    argv += [sys.executable, "-m", "kamlog", "collect", "--config", str(config)]
    return subprocess.run(["timeout", "-s", "TERM", "5", *argv], capture_output=True, text=True, timeout=60,
                          cwd="/")


@pytest.fixture
def root_only_log() -> Iterator[tuple[Path, Path]]:
    """A Kamailio log readable by root only (0600 in a 0700 directory), and a config for it,
    in a directory of its own that `nobody` can enter (pytest's tmp_path is under a 0700 one)."""
    with tempfile.TemporaryDirectory(prefix="kamlog-unit-") as name:
        tmp_path = Path(name)
        tmp_path.chmod(0o755)
        yield _root_only_log(tmp_path)


def _root_only_log(tmp_path: Path) -> tuple[Path, Path]:
    logs = tmp_path / "log"
    logs.mkdir(mode=0o700)
    log = logs / "kamailio.log"
    shutil.copy(EXAMPLE_LOG, log)
    log.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir()
    shutil.chown(state, "nobody")
    config = tmp_path / "kamlog.toml"
    config.write_text(f'[service]\nstate_dir = "{state}"\nstatus = ""\ncall_timeout = 1\n'
                      f'[[logs]]\npaths = ["{log}"]\n[store]\npath = "{state}/timeline.db"\n')
    return config, state / "timeline.db"


class TestSystemdUnit:
    def test_systemd_accepts_the_unit(self, tmp_path: Path) -> None:
        unit = tmp_path / "kamlog.service"
        unit.write_text(UNIT.read_text().replace("/usr/local/bin/kamlog", str(Path(sys.executable).with_name("kamlog"))))
        result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert (result.returncode, result.stderr) == (0, "")

    def test_the_service_runs_unprivileged_with_one_capability_drains_on_term_and_reloads_on_hup(self) -> None:
        service = service_section()
        assert service["User"] == "kamlog"
        assert service["AmbientCapabilities"] == service["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
        assert service["NoNewPrivileges"] == "yes"
        assert service["KillSignal"] == "SIGTERM"
        assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
        assert service["StateDirectory"] == "kamlog"
        assert service["ExecStart"] == "/usr/local/bin/kamlog collect --config /etc/kamlog/kamlog.toml"

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
    def test_the_units_capability_lets_an_unprivileged_user_collect_a_root_only_log(self, root_only_log: tuple[Path, Path]) -> None:
        config, store = root_only_log
        result = as_nobody(service_section()["AmbientCapabilities"].split(), config)
        assert "Traceback" not in result.stderr
        assert f"stopped: lines={LINES} " in result.stderr, result.stderr
        assert store_count(store) == LINES

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
    def test_without_it_the_log_is_unreadable_and_the_service_says_so(self, root_only_log: tuple[Path, Path]) -> None:
        config, store = root_only_log
        result = as_nobody([], config)
        assert "Traceback" not in result.stderr
        assert "Permission denied" in result.stderr, result.stderr
        assert "stopped: lines=0 " in result.stderr
