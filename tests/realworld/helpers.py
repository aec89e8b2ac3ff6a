"""What the real-world tests share: `kamlog tail` run as a user runs it, Kamailio logging through
rsyslog into a file (and an un-rotated witness copy of every line), and the files on disk read
back line by line with their offsets. Every wait here is bounded."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.corpus.runners import (
    LOOPBACK, Kamailio, MountNamespace, Rsyslog, RsyslogOutput, RunnerError, Sipp, syslog_pipeline, wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
RFC3339 = "RSYSLOG_FileFormat"

# `2026-11-28T10:15:13.860537+00:00 vm kamailio[6681]: ERROR: {1 1 INVITE x} <script>: text`
# (lines written before openlog() have no [pid]; Kamailio's level -2 has an empty name).
SYSLOG_LINE = re.compile(
    r"^(?P<ts>\S+) (?P<host>\S+) (?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?:(?P<level>[A-Z]*): )?"
)
#: The levels `--level ERR` shows: ERROR and everything more severe, as Kamailio names them.
ERROR_OR_WORSE = frozenset({"ALERT", "BUG", "CRITICAL", "", "ERROR"})


# ---------------------------------------------------------------------------------------------
# kamlog tail, as a user runs it


class KamlogTail:
    """`python -m kamlog tail ARGS...` in the background; its stdout and stderr collected in threads.

    Stopped with SIGTERM by its PID (kamlog then exits 130), SIGKILL by PID if it does not.
    """

    def __init__(self, *args: str, cwd: Path = ROOT) -> None:
        self.argv = [sys.executable, "-m", "kamlog", "tail", *args]
        self.started_at = dt.datetime.now(dt.timezone.utc)
        env = {**os.environ, "NO_COLOR": "1", "TZ": "UTC", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lock = threading.Lock()
        self._out: list[str] = []
        self._err: list[str] = []
        self._last_output = time.monotonic()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._threads = [
            threading.Thread(target=self._collect, args=(self.process.stdout, self._out), daemon=True),
            threading.Thread(target=self._collect, args=(self.process.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.returncode: int | None = None

    def _collect(self, stream: IO[bytes], into: list[str]) -> None:
        for raw in stream:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                into.append(text)
                if into is self._out:
                    self._last_output = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._out)

    def stderr(self) -> str:
        with self._lock:
            return "\n".join(self._err)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for text in self.lines():
            try:
                out.append(json.loads(text))
            except json.JSONDecodeError:
                pytest.fail(f"kamlog printed a line that is not JSON: {text[:300]!r}")
        return out

    def describe(self) -> str:
        return f"{' '.join(self.argv[1:])} (pid {self.pid}); its stderr:\n{self.stderr()[-3000:]}"

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                time.sleep(0.1)  # let the reader threads take the rest
                if condition():
                    return
                pytest.fail(f"kamlog exited ({self.process.returncode}) before {what}: {self.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g}s waiting for {what}: {self.describe()}")
            time.sleep(0.02)

    def wait_for_stderr(self, text: str, timeout: float = 15.0) -> None:
        self.wait_until(lambda: text in self.stderr(), timeout, f"{text!r} on kamlog's stderr")

    def wait_for_lines(self, count: int, timeout: float = 30.0) -> None:
        self.wait_until(lambda: len(self.lines()) >= count, timeout, f"{count} lines of output")

    def wait_quiet(self, quiet: float = 1.0, timeout: float = 15.0) -> None:
        """Wait until kamlog has printed nothing for `quiet` seconds (a late repeat would show)."""
        def still() -> bool:
            with self._lock:
                return time.monotonic() - self._last_output >= quiet
        self.wait_until(still, timeout, f"kamlog to be quiet for {quiet:g}s")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID, bounded wait (then SIGKILL by PID); returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        self.returncode = self.process.returncode
        return self.returncode

    def __enter__(self) -> KamlogTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Kamailio -> rsyslog -> a file, and a witness file rsyslog writes the same lines to


@dataclass
class Pipeline:
    """Kamailio (syslog, in a mount namespace) -> rsyslog -> `log_path` and `witness_path`.

    The witness is never rotated: it holds every line Kamailio wrote, byte for byte as in the
    log (same message, same template). A SIPp UAS answers as user `answer`; `load` is the
    steady caller, if any.
    """

    workdir: Path
    rsyslog: Rsyslog
    namespace: MountNamespace
    kamailio: Kamailio
    uas: Sipp
    load: Sipp | None
    log_path: Path
    witness_path: Path
    _runs: int = field(default=0)

    def call(self, call_id: str, *, scenario: str = "uac-call.xml", callee: str = "answer") -> None:
        """One call with this Call-ID, to completion (uac-unknown.xml with callee 'nobody': a 404)."""
        self._runs += 1
        sipp = Sipp(self.workdir, scenario, remote=(LOOPBACK, self.kamailio.sip_port), call_id=call_id,
                    keys={"callee": callee}, name=f"sipp-call-{self._runs}", timeout=20)
        result = sipp.run()
        if not result.ok:
            raise RunnerError(f"call {call_id} failed: {result.output[-2000:]}")

    def stop_load(self) -> None:
        if self.load is not None:
            self.load.stop()


@contextlib.contextmanager
def kamailio_through_rsyslog(workdir: Path, log_path: Path, *, rate: float | None = None,
                             debug: int = 2) -> Iterator[Pipeline]:
    """Start rsyslog, Kamailio in syslog mode, a SIPp UAS registered as `answer`, and (with
    `rate`) SIPp calls at that many per second (tests/corpus/runners.py's syslog_pipeline()),
    with a second, un-rotated output file as witness. Everything stops, by PID, on exit."""
    witness = workdir / "witness" / "kamailio-all.log"
    with syslog_pipeline(workdir, log_path, template=RFC3339, rate=rate, debug=debug,
                         extra_outputs=[RsyslogOutput(witness, RFC3339)]) as p:
        yield Pipeline(workdir, p.rsyslog, p.namespace, p.kamailio, p.uas, p.uac, log_path, witness)


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> None:
    """Wait until `text` is in the file (rsyslog has written a line we expect)."""
    data = text.encode()

    def there() -> bool:
        try:
            return data in path.read_bytes()
        except FileNotFoundError:
            return False

    wait_for(there, timeout=timeout, what=f"{text!r} in {path}")


# ---------------------------------------------------------------------------------------------
# the files on disk


@dataclass(frozen=True)
class DiskLine:
    """One line of a file on disk (decompressed if it is a .gz), with the offset of its first byte."""

    file: str
    offset: int
    text: str
    complete: bool  # ends with a newline

    @property
    def parts(self) -> re.Match[str] | None:
        return SYSLOG_LINE.match(self.text)

    @property
    def timestamp(self) -> dt.datetime | None:
        m = self.parts
        return dt.datetime.fromisoformat(m["ts"]) if m else None

    @property
    def pid(self) -> int | None:
        m = self.parts
        return int(m["pid"]) if m and m["pid"] else None

    @property
    def level(self) -> str | None:
        m = self.parts
        return m["level"] if m else None


def read_lines(path: Path, *, since: int = 0) -> list[DiskLine]:
    """The lines of one file from byte `since` on; a .gz file is decompressed (offsets are then
    those of the file before compression, which is what a reader saw)."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = []
    offset = since
    for raw in data[since:].splitlines(keepends=True):
        complete = raw.endswith(b"\n")
        lines.append(DiskLine(path.name, offset, raw.rstrip(b"\n").decode("utf-8", "replace"), complete))
        offset += len(raw)
    return lines


def log_files(directory: Path, name: str) -> list[Path]:
    """`name` and its rotated generations (name.1, name.2.gz, ...) in `directory`, newest first."""
    def generation(p: Path) -> int:
        rest = p.name[len(name):].removesuffix(".gz").lstrip(".")
        return int(rest) if rest.isdigit() else 0
    return sorted((p for p in directory.iterdir() if p.name == name or p.name.startswith(name + ".")),
                  key=generation)


def lines_on_disk(directory: Path, name: str) -> list[DiskLine]:
    return [line for path in log_files(directory, name) for line in read_lines(path)]


# ---------------------------------------------------------------------------------------------
# matching kamlog's records to lines


Key = tuple[dt.datetime | None, int | None, int]


def line_key(line: DiskLine) -> Key:
    """A line by its time (microseconds), PID and byte offset in its file."""
    return (line.timestamp, line.pid, line.offset)


def record_key(record: dict[str, Any]) -> Key:
    """The same for one of kamlog's JSON records (`@timestamp`, `process.pid`, `log.offset`)."""
    ts = record.get("@timestamp")
    when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")) if isinstance(ts, str) else None
    return (when, record.get("process.pid"), int(record.get("log.offset", -1)))


@dataclass
class Comparison:
    """kamlog's records against the lines on disk: each line once, and nothing else."""

    lines: list[DiskLine]
    records: list[dict[str, Any]]
    missing: list[DiskLine] = field(default_factory=list)
    repeated: list[tuple[DiskLine, int]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    wrong_message: list[tuple[DiskLine, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def of(cls, lines: Sequence[DiskLine], records: Sequence[dict[str, Any]]) -> Comparison:
        c = cls(list(lines), list(records))
        by_key: dict[Key, list[dict[str, Any]]] = {}
        for record in records:
            by_key.setdefault(record_key(record), []).append(record)
        on_disk = Counter(line_key(line) for line in lines)
        for line in lines:
            found = by_key.get(line_key(line), [])
            wanted = on_disk[line_key(line)]
            if len(found) < wanted:
                c.missing.append(line)
            elif len(found) > wanted:
                c.repeated.append((line, len(found)))
            for record in found:
                message = str(record.get("message", ""))
                escaped = message.replace("\n", "#012").replace("\r", "#015")
                if escaped not in line.text and message not in line.text:
                    c.wrong_message.append((line, record))
        c.extra = [r for r in records if record_key(r) not in on_disk]
        return c

    @property
    def exact(self) -> bool:
        return not (self.missing or self.repeated or self.extra or self.wrong_message)

    def explain(self, limit: int = 8) -> str:
        out = [f"{len(self.lines)} lines on disk, {len(self.records)} records from kamlog"]
        if self.missing:
            out.append(f"{len(self.missing)} lines never arrived, e.g.:")
            out += [f"  {m.file}:{m.offset}: {m.text[:160]}" for m in self.missing[:limit]]
        if self.repeated:
            out.append(f"{len(self.repeated)} lines arrived more than once, e.g.:")
            out += [f"  x{n} {m.file}:{m.offset}: {m.text[:160]}" for m, n in self.repeated[:limit]]
        if self.extra:
            out.append(f"{len(self.extra)} records match no line on disk, e.g.:")
            out += [f"  {json.dumps(r)[:300]}" for r in self.extra[:limit]]
        if self.wrong_message:
            out.append(f"{len(self.wrong_message)} records carry a message their line does not have, e.g.:")
            out += [f"  {m.file}:{m.offset}: {m.text[:160]}\n    {json.dumps(r)[:300]}"
                    for m, r in self.wrong_message[:limit]]
        return "\n".join(out)


# text output: `2026-11-28 10:15:13.860537 vm kamailio[6681] ALERT    {1 INVITE id} script: ...`
TEXT_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}) (?P<host>\S+) (?P<tag>[^\s\[]+)\[(?P<pid>\d+)\] "
    r"(?P<level>\S*)\s+(?P<rest>.*)$"
)


def text_key(text: str) -> tuple[dt.datetime, int]:
    """A line of kamlog's text output (TZ=UTC) by its time and PID."""
    m = TEXT_LINE.match(text)
    if m is None:
        pytest.fail(f"kamlog printed a text line of an unexpected form: {text[:300]!r}")
    return (dt.datetime.fromisoformat(m["ts"] + "+00:00"), int(m["pid"]))
