"""Helpers for the tailer tests: a writer process, real logrotate, and a follower collected in
a thread or pulled step by step. Every wait here is bounded."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from kamlog.tail import Chunk, Follower, Idle, Notice
from tests.tail.writer import line

WRITER = Path(__file__).with_name("writer.py")
NUMBER = re.compile(rb"^line (\d{8}) x*$")


def numbers(chunks: list[Chunk]) -> list[int]:
    """The line numbers (writer.py's) in the complete lines of these chunks, in order."""
    out: list[int] = []
    for chunk in chunks:
        if chunk.partial:
            continue
        for text in chunk.data.splitlines():
            m = NUMBER.match(text)
            assert m, f"not a whole line from writer.py: {text[:60]!r} at {chunk.path}:{chunk.offset}"
            out.append(int(m.group(1)))
    return out


def numbers_on_disk(paths: list[Path]) -> set[int]:
    """The numbers of the complete lines now stored in these files."""
    found: set[int] = set()
    for path in paths:
        for text in path.read_bytes().split(b"\n")[:-1]:
            m = NUMBER.match(text)
            if m:
                found.add(int(m.group(1)))
    return found


def write_lines(path: Path, numbers_: range) -> None:
    """Append writer.py's lines with these numbers to `path`, in one write."""
    with open(path, "ab") as f:
        f.write(b"".join(line(n) for n in numbers_))


def chunks_of(items: Iterable[object]) -> list[Chunk]:
    """Only the chunks."""
    return [i for i in items if isinstance(i, Chunk)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class Collector:
    """Runs a Follower in a thread and keeps what it yields."""

    def __init__(self, follower: Follower, on_chunk: Callable[[Chunk], None] | None = None):
        self.follower = follower
        self.items: list[Chunk | Notice | Idle] = []
        self._on_chunk = on_chunk
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for item in self.follower:
            if isinstance(item, Chunk) and self._on_chunk is not None:
                self._on_chunk(item)
            with self._lock:
                self.items.append(item)

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return [i for i in self.items if isinstance(i, Chunk)]

    @property
    def notices(self) -> list[Notice]:
        with self._lock:
            return [i for i in self.items if isinstance(i, Notice)]

    def numbers(self) -> list[int]:
        return numbers(self.chunks)

    def wait_for_count(self, count: int, timeout: float = 10.0) -> None:
        wait_until(lambda: len(self.numbers()) >= count, timeout, f"{count} lines")

    def wait_for_line(self, number: int, timeout: float = 10.0) -> None:
        wait_until(lambda: number in self.numbers(), timeout, f"line {number}")

    def stop(self, timeout: float = 5.0) -> None:
        self.follower.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the follower did not stop"


def pull_until_idle(items: Iterator[Chunk | Notice | Idle], timeout: float = 5.0) -> list[Chunk | Notice]:
    """Pull from a follower's iterator until it says Idle (it has read everything there is)."""
    out: list[Chunk | Notice] = []
    deadline = time.monotonic() + timeout
    for item in items:
        if isinstance(item, Idle):
            return out
        out.append(item)
        if time.monotonic() > deadline:
            break
    pytest.fail(f"the follower did not go idle within {timeout}s")


def pull_until_lines(items: Iterator[Chunk | Notice | Idle], count: int, timeout: float = 5.0) -> list[Chunk]:
    """Pull from a follower's iterator until `count` lines have arrived."""
    chunks: list[Chunk] = []
    deadline = time.monotonic() + timeout
    for item in items:
        if isinstance(item, Chunk):
            chunks.append(item)
            if len(numbers(chunks)) >= count:
                return chunks
        if time.monotonic() > deadline:
            break
    pytest.fail(f"{count} lines did not arrive within {timeout}s")


class Writers:
    """Starts writer.py processes and stops the ones still running, by PID."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, path: Path, *, first: int = 0, count: int, rate: float = 300.0, **options: float) -> subprocess.Popen[bytes]:
        argv = [sys.executable, str(WRITER), str(path), "--first", str(first), "--count", str(count), "--rate", str(rate)]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        process = subprocess.Popen(argv)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(timeout=5)


@pytest.fixture
def writers() -> Iterator[Writers]:
    w = Writers()
    yield w
    w.stop_all()


def wait_exit(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Wait for a writer to finish its lines; fail if it does not or if it failed."""
    assert process.wait(timeout=timeout) == 0


class Logrotate:
    """Real logrotate, with its configuration and state file in the test's directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config = directory / "logrotate.conf"
        self.state = directory / "logrotate.state"

    def configure(self, log: Path | str, *options: str, reopen_pid: int | None = None) -> None:
        body = ["rotate 10", "missingok", "notifempty", *options]
        if reopen_pid is not None:
            body += ["postrotate", f"    kill -HUP {reopen_pid}", "endscript"]
        self.config.write_text(f"{log} {{\n" + "".join(f"    {line}\n" for line in body) + "}\n")
        self.config.chmod(0o644)

    def rotate(self) -> None:
        result = subprocess.run(
            ["logrotate", "-f", "-s", str(self.state), str(self.config)],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr


@pytest.fixture
def logrotate(tmp_path: Path) -> Logrotate:
    return Logrotate(tmp_path)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    directory = tmp_path / "log"
    directory.mkdir(mode=0o755)
    return directory
