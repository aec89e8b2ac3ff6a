"""Run `kamlog collect` for real in tests: its config, its process, its status, and the ids in
its stores, and the same inputs indexed afterwards by `kamlog index` (what should be there)."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.corpus.runners import LOOPBACK, Process, Tcpdump, free_port, wait_for
from tests.cli_helpers import kamlog

KAMLOG = [sys.executable, "-m", "kamlog"]


def write_config(path: Path, state: Path, *, logs: list[str] = (), captures: str | None = None,  # type: ignore[assignment]
                 store: Path | None = None, es: str | None = None, call_timeout: float = 3,
                 closed_after: float = 2, spool_max: str = "1GiB", hostname: str = "node-a",
                 status_port: int | None = None, extra: str = "", journald: str | None = None) -> int:
    """Writes a collect config; returns the status port."""
    port = status_port or free_port(kind=1)
    text = f"""\
[service]
state_dir = "{state}"
hostname = "{hostname}"
call_timeout = {call_timeout}
status = "{LOOPBACK}:{port}"
stats_interval = 1
"""
    if logs:
        text += f"[[logs]]\npaths = {json.dumps(list(logs))}\n"
    if captures:
        text += f'[[captures]]\nfiles = "{captures}"\nclosed_after = {closed_after}\n'
    if journald:
        text += f'[journald]\ndirectory = "{journald}"\n'
    if store:
        text += f'[store]\npath = "{store}"\n'
    if es:
        text += f'[elasticsearch]\nurl = "{es}"\nspool_max = "{spool_max}"\n'
    path.write_text(text + extra)
    return port


class Collect:
    """`kamlog collect --config` as a process of ours (stopped by its PID)."""

    def __init__(self, workdir: Path, config: Path, port: int, name: str = "collect") -> None:
        self.workdir = workdir
        self.config = config
        self.port = port
        self.name = name
        self.runs = 0
        self.process: Process | None = None

    def start(self) -> None:
        self.runs += 1
        out = self.workdir / f"{self.name}-{self.runs}.log"
        self.process = Process(f"kamlog collect ({self.runs})", [*KAMLOG, "collect", "--config", str(self.config)],
                               cwd=self.workdir, stdout=out, stderr=out)
        self.process.start()
        wait_for(lambda: self.health() is not None, timeout=30, what="kamlog collect to serve its status")

    @property
    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(f"{self.name}-*.log")))

    def health(self) -> dict[str, Any] | None:
        assert self.process is not None
        self.process.check_running()
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/health", timeout=2) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except OSError:
            return None

    def kill(self) -> None:
        """kill -9: no drain, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM: drain and exit; returns the exit status."""
        assert self.process is not None
        return self.process.stop(signal.SIGTERM, timeout=60)

    def __enter__(self) -> Collect:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.running():
            self.process.stop(signal.SIGTERM, timeout=30)


class RotatingTcpdump(Tcpdump):
    """tcpdump -G: a new capture file every `seconds` (named by the epoch second)."""

    def __init__(self, workdir: Path, directory: Path, ports: list[int], seconds: int = 2) -> None:
        super().__init__(workdir, directory / "sip-%s.pcap", ports, name="tcpdump-rotating")
        self.directory = directory
        self.seconds = seconds

    @property
    def argv(self) -> list[str]:
        argv = super().argv
        at = argv.index("-w")
        return [*argv[:at], "-G", str(self.seconds), *argv[at:]]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGINT, timeout=10)


def store_ids(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT id FROM events")}
    finally:
        db.close()


def store_count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        db.close()


def assert_stored_exactly(store: Path, want: set[str]) -> None:
    """The store holds these ids, each once, and nothing else."""
    got = store_ids(store)
    assert got == want, f"missing {len(want - got)}, extra {len(got - want)}"
    assert store_count(store) == len(want)


def expected_ids(workdir: Path, logs: list[Path], captures: list[Path]) -> set[str]:
    """The ids `kamlog index` gives the same files read whole: what collect must have stored."""
    store = workdir / "expected.db"
    args = ["index", "--store", str(store)]
    for log in logs:
        args += ["--log", str(log)]
    for capture in captures:
        args += ["--pcap", str(capture)]
    result = kamlog(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    return store_ids(store)
