"""Start real Kamailio, rsyslog, systemd-journald, SIPp and tcpdump for the tests, and stop them again.

Every runner is a context manager that works in a directory it is given (a temporary one), on
loopback, on ports picked by binding a socket; it waits for its program to be really ready, and
stops it by its PID (never by name) with a bounded wait: every wait and loop here has a timeout.

Kamailio in syslog mode calls syslog(3), which always writes to the socket ``/dev/log``. To make it
log into OUR rsyslog or journald and never into the host's (and to run on a host that has no
``/dev/log`` at all, without creating one there), it runs inside a private mount namespace
(:class:`MountNamespace`) in which ``/dev`` is a small tmpfs holding bind mounts of the few device
nodes a daemon needs and a symlink ``/dev/log`` to our socket. Nothing outside the namespace changes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import random
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATE = HERE / "kamailio.cfg"
SCENARIOS = HERE / "scenarios"

KAMAILIO = "kamailio"
RSYSLOGD = "rsyslogd"
JOURNALD = "/lib/systemd/systemd-journald"
JOURNALCTL = "journalctl"
SIPP = "sipp"
TCPDUMP = "tcpdump"
TSHARK = "tshark"

LOOPBACK = "127.0.0.1"

#: rsyslog's built-in templates, by the name the corpus gives the files they write.
RSYSLOG_TEMPLATES: dict[str, str] = {
    "traditional": "RSYSLOG_TraditionalFileFormat",
    "rfc3339": "RSYSLOG_FileFormat",
    "rfc5424": "RSYSLOG_SyslogProtocol23Format",
}


class RunnerError(RuntimeError):
    """A program of the corpus did not start, did not get ready, or failed."""


# ---------------------------------------------------------------------------------------------
# small helpers


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is true; raise :class:`RunnerError` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise RunnerError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


#: Where test ports are picked: below Linux's ephemeral range (32768-60999), so that no socket
#: bound to port 0 (a SIPp caller, a DNS query, another test's client) is given the port a test
#: chose while the program that is to listen on it is still starting.
PORT_RANGE = (20000, 32767)
_ports = random.Random()


def _bindable(port: int, kind: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(kind: int = socket.SOCK_DGRAM, host: str = LOOPBACK) -> int:
    """A port that is free right now on ``host`` for UDP and TCP (``kind`` is kept for callers
    that name it), picked at random in :data:`PORT_RANGE`."""
    return free_ports(1, host)[0]


@functools.cache
def dissector_ports() -> frozenset[int]:
    """The UDP and TCP ports tshark decodes as some protocol of their own (22222 is RTPproxy's,
    ...): SIP on such a port is not SIP to tshark, so the tests, which compare with tshark,
    never give one to Kamailio or SIPp."""
    try:
        out = subprocess.run([TSHARK, "-G", "decodes"], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    ports: set[int] = set()
    for line in out.splitlines():
        table, _, rest = line.partition("\t")
        value = rest.partition("\t")[0]
        if table in ("udp.port", "tcp.port") and value.isdigit():
            ports.add(int(value))
    return frozenset(ports)


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports free right now on ``host`` for both UDP and TCP, none of them a
    port tshark decodes as another protocol."""
    chosen: list[int] = []
    claimed = dissector_ports()
    for _ in range(1000):
        port = _ports.randint(*PORT_RANGE)
        if port in claimed:
            continue
        if port not in chosen and _bindable(port, socket.SOCK_DGRAM, host) and _bindable(port, socket.SOCK_STREAM, host):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RunnerError(f"no {count} free ports in {PORT_RANGE} on {host}")


def tcp_port_listening(port: int, host: str = LOOPBACK) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def udp_port_bound(port: int, host: str = LOOPBACK) -> bool:
    """True if some process has bound UDP ``host:port`` (we cannot bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
        return False


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != b"Z"


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes whose process group is ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def file_settled(paths: Sequence[Path], *, quiet: float = 0.3, timeout: float = 10.0) -> None:
    """Wait until none of ``paths`` has changed size for ``quiet`` seconds (a writer has drained)."""
    def sizes() -> tuple[int, ...]:
        return tuple(p.stat().st_size if p.exists() else -1 for p in paths)

    deadline = time.monotonic() + timeout
    last, since = sizes(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = sizes()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise RunnerError(f"timed out after {timeout:g}s waiting for {', '.join(map(str, paths))} to settle")


def assert_no_mounts_under(directory: Path) -> None:
    """Refuse to go on if a mount of a namespace leaked into ``directory`` on the host."""
    for root, dirs, _files in os.walk(directory):
        for d in dirs:
            if os.path.ismount(os.path.join(root, d)):
                raise RunnerError(f"{os.path.join(root, d)} is a mount point on the host; not deleting")


class Process:
    """One child process, started by :meth:`start`, stopped by PID with bounded waits.

    It runs in its own session (so an escalation to SIGKILL can reach its whole process group by
    its id, e.g. Kamailio's children, without naming any program).
    """

    def __init__(self, name: str, argv: Sequence[str], *, cwd: Path, stdout: Path, stderr: Path,
                 env: Mapping[str, str] | None = None, stdin_pipe: bool = False) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.env = dict(env) if env is not None else None
        self.stdin_pipe = stdin_pipe
        self.popen: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RunnerError(f"{self.name} is not started")
        return self.popen.pid

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    def start(self) -> None:
        out = open(self.stdout_path, "ab")
        err = out if self.stderr_path == self.stdout_path else open(self.stderr_path, "ab")
        self._files = [out] if err is out else [out, err]
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=out, stderr=err,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )
        except OSError as exc:
            self._close_files()
            raise RunnerError(f"cannot start {self.name} ({self.command_line}): {exc}") from exc

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_running(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RunnerError(
                f"{self.name} exited with status {self.popen.returncode}: {self.command_line}\n"
                f"{self.tail_stderr()}"
            )

    def tail_stderr(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; kill it and raise if it takes longer than ``timeout``."""
        assert self.popen is not None
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGTERM, timeout=5)
            raise RunnerError(f"{self.name} did not finish within {timeout:g}s: {self.command_line}") from None
        finally:
            if self.popen.poll() is not None:
                self._close_files()
        return rc

    def send_signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` to the PID, wait up to ``timeout``; then SIGKILL its process group by id."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        # Children that outlived their leader (e.g. Kamailio workers after a SIGKILL), by PID.
        for pid in group_members(self.popen.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        self._close_files()
        return self.popen.returncode

    def _close_files(self) -> None:
        for f in self._files:
            with contextlib.suppress(OSError):
                f.close()
        self._files = []


class _Managed:
    """Context-manager plumbing: ``__enter__`` calls :meth:`start`, ``__exit__`` calls :meth:`stop`."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# mount namespace


_NS_SETUP = r"""
set -eu
# Runs as the first process of a new, private mount namespace: nothing here is seen by the host.
T="$1"; DEV_LOG="$2"
mkdir -p "$T/hostdev"
mount --rbind /dev "$T/hostdev"
mount -t tmpfs -o mode=0755,nosuid,size=1m kamlog-dev /dev
for n in null zero full random urandom tty; do
    touch "/dev/$n"; mount --bind "$T/hostdev/$n" "/dev/$n"
done
for d in shm pts; do
    mkdir "/dev/$d"; mount --rbind "$T/hostdev/$d" "/dev/$d"
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
umount -l "$T/hostdev"
rmdir "$T/hostdev"
%(extra)s
ln -s "$DEV_LOG" /dev/log
echo kamlog-namespace-ready
exec cat
"""


class MountNamespace(_Managed):
    """A private mount namespace in which ``/dev/log`` is a symlink to ``dev_log``.

    ``/dev`` is replaced (inside the namespace only) by a tmpfs with bind mounts of null, zero,
    full, random, urandom, tty, shm and pts, the /proc/self/fd links, and ``/dev/log``. The host's
    ``/dev`` is untouched, and ``/dev/log`` is never created on the host. A holder process
    (``unshare ... sh`` exec'ing ``cat`` on a pipe) keeps the namespace alive; programs join it
    with :meth:`wrap` (``nsenter --mount=/proc/PID/ns/mnt``, which exec's in place, so the PID
    we get is the program's own). ``extra_setup`` is shell run in the namespace before it is
    ready (journald uses it for its own /run directories).
    """

    def __init__(self, workdir: Path, dev_log: str | Path, *, extra_setup: str = "",
                 name: str = "namespace") -> None:
        self.workdir = workdir
        self.dev_log = str(dev_log)
        self.dir = workdir / name
        self.extra_setup = extra_setup
        self.process: Process | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        script = self.dir / "setup.sh"
        script.write_text(_NS_SETUP % {"extra": self.extra_setup})
        out = self.dir / "holder.out"
        self.process = Process(
            "mount namespace holder",
            ["unshare", "--mount", "--propagation", "private", "sh", str(script), str(self.dir), self.dev_log],
            cwd=self.dir, stdout=out, stderr=out, stdin_pipe=True,
        )
        self.process.start()

        def ready() -> bool:
            assert self.process is not None
            self.process.check_running()
            return "kamlog-namespace-ready" in out.read_text(errors="replace")

        wait_for(ready, timeout=10, what="the mount namespace to be set up")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this namespace, keeping its PID."""
        return ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--", *argv]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=5)
        if self.dir.exists():
            assert_no_mounts_under(self.dir)


# ---------------------------------------------------------------------------------------------
# rsyslog


@dataclass(frozen=True)
class RsyslogOutput:
    """One file rsyslog writes Kamailio's messages to, with one of rsyslog's templates."""

    path: Path
    template: str  # e.g. "RSYSLOG_FileFormat"


class Rsyslog(_Managed):
    """``rsyslogd -n`` with its own imuxsock socket, work directory and output files.

    The host's ``/dev/log`` (SysSock) is off; the socket lives in ``workdir``. The socket input
    stamps each message with rsyslog's receive time (``UseSysTimeStamp``), so RFC 3339 templates
    show microseconds (glibc's syslog header only has seconds). Messages whose program name is
    ``program`` go to every output. ``hup()`` (or ``kill -HUP $(cat pid_file)`` from a logrotate
    postrotate script) closes the files; rsyslog reopens them on the next message.
    """

    def __init__(self, workdir: Path, outputs: Sequence[RsyslogOutput], *, program: str = "kamailio",
                 name: str = "rsyslog") -> None:
        self.workdir = workdir
        self.dir = workdir / name
        self.outputs = list(outputs)
        self.program = program
        self.socket_path = self.dir / "log.sock"
        self.pid_file = self.dir / "rsyslogd.pid"
        self.conf_path = self.dir / "rsyslog.conf"
        self.process: Process | None = None

    def render_config(self) -> str:
        actions = "\n".join(
            f'    action(type="omfile" file="{o.path}" template="{o.template}")' for o in self.outputs
        )
        return f"""\
# kamlog test corpus: a private rsyslogd that writes Kamailio's syslog into files of ours.
global(workDirectory="{self.dir / 'work'}" maxMessageSize="64k")
main_queue(queue.timeoutShutdown="10000" queue.timeoutActionCompletion="10000")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{self.socket_path}" CreatePath="on"
      UseSysTimeStamp="on" RateLimit.Interval="0")
if $programname == "{self.program}" then {{
{actions}
    stop
}}
"""

    def start(self) -> None:
        (self.dir / "work").mkdir(parents=True, exist_ok=True)
        for o in self.outputs:
            o.path.parent.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.render_config())
        self.process = Process(
            "rsyslogd",
            [RSYSLOGD, "-n", "-f", str(self.conf_path), "-i", str(self.pid_file)],
            cwd=self.dir, stdout=self.dir / "rsyslogd.out", stderr=self.dir / "rsyslogd.out",
        )
        self.process.start()

        def ready() -> bool:
            assert self.process is not None
            self.process.check_running()
            return self.socket_path.exists() and self.pid_file.exists() and self.pid_file.read_text().strip() != ""

        wait_for(ready, timeout=10, what="rsyslogd to create its socket and pid file")

    @property
    def pid(self) -> int:
        """rsyslogd's PID, as its pid file says (the same as the process we started: it runs with -n)."""
        return int(self.pid_file.read_text().strip())

    def hup(self) -> None:
        """Make rsyslog close its output files (reopened on the next message), as logrotate does."""
        os.kill(self.pid, signal.SIGHUP)

    def drain(self, *, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until rsyslog has written everything it received (the files stop growing)."""
        file_settled([o.path for o in self.outputs], quiet=quiet, timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=15)


# ---------------------------------------------------------------------------------------------
# systemd-journald


_JOURNALD_NS_SETUP = r"""
# journald's own runtime directory and journal, private to the namespace; its journal files
# go to a directory of ours (bound on /run/log/journal, Storage=volatile); the host's
# /var/log/journal and journald.conf are hidden.
mount -t tmpfs -o mode=0755 kamlog-journal-run /run/systemd/journal
mount -t tmpfs -o mode=0755 kamlog-run-log /run/log
mkdir /run/log/journal
mount --bind "$T/../journal" /run/log/journal
mount -t tmpfs -o mode=0755 kamlog-var-journal /var/log/journal
mount --bind "$T/../journald.conf" /etc/systemd/journald.conf
"""

_JOURNALD_CONF = """\
[Journal]
Storage=volatile
Compress=no
Seal=no
RateLimitIntervalSec=0
RateLimitBurst=0
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""


class Journald(_Managed):
    """A private ``systemd-journald`` in its own mount namespace, writing to ``workdir/journald/journal``.

    Inside the namespace ``/dev/log`` is journald's syslog socket (``/run/systemd/journal/dev-log``),
    so a Kamailio started with ``namespace=journald.namespace`` logs into this journal.
    :meth:`export` runs ``journalctl -D`` on the journal directory.
    """

    def __init__(self, workdir: Path, *, name: str = "journald") -> None:
        self.workdir = workdir
        self.dir = workdir / name
        self.journal_dir = self.dir / "journal"
        self.namespace = MountNamespace(
            self.dir, "/run/systemd/journal/dev-log", extra_setup=_JOURNALD_NS_SETUP, name="namespace"
        )
        self.process: Process | None = None

    def start(self) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "journald.conf").write_text(_JOURNALD_CONF)
        self.namespace.start()
        out = self.dir / "journald.out"
        self.process = Process("systemd-journald", self.namespace.wrap([JOURNALD]),
                               cwd=self.dir, stdout=out, stderr=out)
        self.process.start()

        def ready() -> bool:
            assert self.process is not None
            self.process.check_running()
            return any(self.journal_dir.glob("*/system.journal"))

        wait_for(ready, timeout=10, what="systemd-journald to open its journal")
        # The sockets are bound before the journal file is opened; nothing more to wait for.

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def journalctl(self, *args: str, timeout: float = 30) -> bytes:
        argv = [JOURNALCTL, "-D", str(self.journal_dir), "--no-pager", *args]
        done = subprocess.run(argv, capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise RunnerError(f"{shlex.join(argv)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=10)
        self.namespace.stop()


# ---------------------------------------------------------------------------------------------
# Kamailio


LogTarget = Literal["stderr", "syslog"]


def render_config(template: str, values: Mapping[str, object]) -> str:
    """Replace each ``@@NAME@@`` of the Kamailio config template; every placeholder must be given."""
    text = template
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", str(value))
    if "@@" in text:
        start = text.index("@@")
        raise RunnerError(f"config template placeholder left unset: {text[start:text.index('@@', start + 2) + 2]}")
    return text


@dataclass
class Kamailio(_Managed):
    """Kamailio as a foreground process (``-DD``: the main process does not daemonize, its workers fork).

    ``log_target="stderr"`` adds ``-E`` (and ``-e`` when ``color``); its stderr goes to
    :attr:`stderr_path`, which is then the log. ``log_target="syslog"`` logs with syslog(3), so it
    needs ``namespace`` (a :class:`MountNamespace` whose /dev/log is our rsyslog's or journald's socket).
    ``log_engine`` is the ``--log-engine`` value, e.g. ``"json"``, ``"json:c"``, ``"json:U"``.
    """

    workdir: Path
    log_target: LogTarget = "stderr"
    color: bool = False
    log_engine: str | None = None
    namespace: MountNamespace | None = None
    sip_port: int = 0
    debug: int = 3
    timer_interval: int = 1
    config_template: Path = CONFIG_TEMPLATE
    defines: Sequence[str] = ()  # config defines (-A): WITH_TCP, WITH_SIPDUMP
    name: str = "kamailio"
    process: Process | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.sip_port == 0:
            self.sip_port = free_port()
        if self.log_target == "syslog" and self.namespace is None:
            raise RunnerError("Kamailio in syslog mode needs a MountNamespace whose /dev/log is ours")
        if self.color and self.log_target != "stderr":
            raise RunnerError("Kamailio's -e (colours) only applies with -E (stderr)")
        self.dir = self.workdir / self.name
        self.config_path = self.dir / "kamailio.cfg"
        self.pid_file = self.dir / "kamailio.pid"
        self.stderr_path = self.dir / "kamailio.stderr"
        self.stdout_path = self.dir / "kamailio.stdout"
        self.sipdump_dir = self.dir / "sipdump"

    @property
    def argv(self) -> list[str]:
        argv = [KAMAILIO, "-f", str(self.config_path), "-DD", "-w", str(self.dir), "-Y", str(self.dir / "run"),
                "-P", str(self.pid_file)]
        if self.log_target == "stderr":
            argv.append("-E")
            if self.color:
                argv.append("-e")
        if self.log_engine:
            argv.append(f"--log-engine={self.log_engine}")
        for define in self.defines:
            argv += ["-A", define]
        return argv

    @property
    def full_argv(self) -> list[str]:
        return self.namespace.wrap(self.argv) if self.namespace is not None else self.argv

    def start(self) -> None:
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        self.sipdump_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.config_template.read_text(), {
            "SIP_PORT": self.sip_port, "DEBUG": self.debug, "TIMER_INTERVAL": self.timer_interval,
            "SIPDUMP_DIR": self.sipdump_dir,
        }))
        self.process = Process(self.name, self.full_argv, cwd=self.dir,
                               stdout=self.stdout_path, stderr=self.stderr_path)
        self.process.start()

        def ready() -> bool:
            assert self.process is not None
            self.process.check_running()
            return (self.pid_file.exists() and udp_port_bound(self.sip_port)
                    and ("WITH_TCP" not in self.defines or tcp_port_listening(self.sip_port)))

        wait_for(ready, timeout=20, what=f"Kamailio to listen on udp:{LOOPBACK}:{self.sip_port}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=15)


# ---------------------------------------------------------------------------------------------
# SIPp


@dataclass(frozen=True)
class SippResult:
    """What one SIPp run did: its exit status (0: every call succeeded) and its screen output."""

    scenario: str
    call_id: str
    returncode: int
    command_line: str
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Sipp(_Managed):
    """One SIPp process (UAC or UAS) running one of our scenarios.

    As a context manager it runs in the background (a UAS waiting for its call, or a long load);
    :meth:`run` starts it, waits for it to finish and returns a :class:`SippResult`.

    ``call_id`` becomes SIPp's Call-ID format (``-cid_str``: ``%u`` call number, ``%p`` pid,
    ``%s`` IP; a fixed text for a one-call run), so the scenarios say ``Call-ID: [call_id]`` and
    SIPp still matches replies to its call. ``keys`` are ``-key NAME VALUE`` pairs.
    """

    def __init__(self, workdir: Path, scenario: str | Path, *, local_port: int | None = None,
                 remote: tuple[str, int] | None = None, call_id: str = "%u-%p@%s",
                 keys: Mapping[str, object] | None = None, calls: int | None = 1,
                 rate: float | None = None, timeout: float = 20, name: str | None = None,
                 transport: str = "u1") -> None:
        self.workdir = workdir
        self.transport = transport  # SIPp's -t: u1 (UDP, one socket), t1 (TCP, one connection)
        self.scenario = Path(scenario) if Path(scenario).is_absolute() else SCENARIOS / scenario
        self.local_port = local_port if local_port is not None else free_port()
        self.remote = remote
        self.call_id = call_id
        self.keys = dict(keys or {})
        self.calls = calls
        self.rate = rate
        self.timeout = timeout
        self.name = name or f"sipp-{self.scenario.stem}-{self.local_port}"
        self.dir = workdir / "sipp"
        self.process: Process | None = None

    @property
    def argv(self) -> list[str]:
        argv = [SIPP]
        if self.remote is not None:
            argv.append(f"{self.remote[0]}:{self.remote[1]}")
        argv += ["-sf", str(self.scenario), "-t", self.transport, "-i", LOOPBACK, "-p", str(self.local_port),
                 "-cid_str", self.call_id, "-nostdin", "-timeout", f"{self.timeout:g}s", "-timeout_error",
                 "-trace_msg", "-message_file", str(self.dir / f"{self.name}.messages"),
                 "-trace_err", "-error_file", str(self.dir / f"{self.name}.errors")]
        if self.calls is not None:
            argv += ["-m", str(self.calls)]
        if self.rate is not None:
            argv += ["-r", f"{self.rate:g}", "-rp", "1000"]
        for key, value in self.keys.items():
            argv += ["-key", key, str(value)]
        return argv

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        out = self.dir / f"{self.name}.out"
        self.process = Process(self.name, self.argv, cwd=self.dir, stdout=out, stderr=out)
        self.process.start()
        if self.remote is None:  # a UAS: ready once it listens
            def ready() -> bool:
                assert self.process is not None
                self.process.check_running()
                return udp_port_bound(self.local_port)
            wait_for(ready, timeout=10, what=f"SIPp {self.scenario.name} to listen on {self.local_port}")

    def finish(self, timeout: float | None = None) -> SippResult:
        """Wait for the run to end by itself (bounded) and return its result."""
        assert self.process is not None
        rc = self.process.wait(timeout if timeout is not None else self.timeout + 10)
        output = self.process.stdout_path.read_text(errors="replace")
        errors = self.dir / f"{self.name}.errors"
        if rc != 0 and errors.exists():
            output += "\n--- SIPp errors file ---\n" + errors.read_text(errors="replace")[-4000:]
        return SippResult(self.scenario.name, self.call_id, rc, self.process.command_line, output)

    def run(self) -> SippResult:
        """Start, wait for the end, return the result (a UAC placing its calls)."""
        self.start()
        return self.finish()

    def stop(self) -> None:
        """Stop early (a long-running load): SIGUSR1 asks SIPp to finish its calls and quit."""
        if self.process is not None and self.process.running():
            self.process.send_signal(signal.SIGUSR1)
            try:
                self.process.popen.wait(timeout=10)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=5)


# ---------------------------------------------------------------------------------------------
# tcpdump


class Tcpdump(_Managed):
    """``tcpdump -i lo`` writing a pcap of the UDP traffic of ``ports``.

    Ready once tcpdump says it is listening (it prints that after the capture is active). With
    ``--immediate-mode -U`` each packet reaches the file at once (without it the kernel holds
    packets up to a second, and SIGINT loses them); stopped with SIGINT by PID once the file has
    stopped growing, and waited for.
    """

    #: What the capture tool prints on stderr once it captures.
    ready_text = "listening on"

    def __init__(self, workdir: Path, pcap: Path, ports: Sequence[int], *, interface: str = "lo",
                 name: str = "tcpdump", protocols: str = "udp") -> None:
        self.workdir = workdir
        self.pcap = pcap
        self.ports = list(ports)
        self.interface = interface  # "any": Linux cooked headers (SLL2)
        self.protocols = protocols  # "udp", "udp or tcp"
        self.name = name
        self.process: Process | None = None
        self.stderr_path = workdir / f"{name}.stderr"

    @property
    def filter(self) -> str:
        return f"({self.protocols}) and (" + " or ".join(f"port {p}" for p in self.ports) + ")"

    @property
    def argv(self) -> list[str]:
        return [TCPDUMP, "-i", self.interface, "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root",
                "-w", str(self.pcap), self.filter]

    def start(self) -> None:
        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        self.process = Process(self.name, self.argv, cwd=self.workdir,
                               stdout=self.workdir / f"{self.name}.stdout", stderr=self.stderr_path)
        self.process.start()

        def ready() -> bool:
            assert self.process is not None
            self.process.check_running()
            return self.ready_text in self.stderr_path.read_text(errors="replace")

        wait_for(ready, timeout=10, what=f"{self.name} to start capturing")

    def stop(self) -> None:
        if self.process is not None and self.process.running():
            # --immediate-mode hands each packet over at once and -U writes it at once; let the
            # last ones reach the file before SIGINT (which drops what tcpdump has not yet read).
            file_settled([self.pcap], quiet=0.3, timeout=10)
        if self.process is not None:
            self.process.stop(signal.SIGINT, timeout=10)

    @property
    def captured(self) -> int | None:
        """The "N packets captured" tcpdump reported when it stopped."""
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.endswith("packets captured"):
                return int(line.split()[0])
        return None


class Tshark(Tcpdump):
    """``tshark -F pcapng`` writing a pcapng of the same traffic (through dumpcap, its child)."""

    ready_text = "Capturing on"

    @property
    def argv(self) -> list[str]:
        return [TSHARK, "-i", self.interface, "-n", "-q", "-F", "pcapng", "-w", str(self.pcap),
                "-f", self.filter]

    @property
    def captured(self) -> int | None:
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.endswith(("packets captured", "packet captured")):
                return int(line.split()[0])
        return None


# ---------------------------------------------------------------------------------------------
# a long-running Kamailio -> rsyslog -> file pipeline with steady SIP traffic


@dataclass
class SyslogPipeline:
    """Kamailio (syslog mode, in a namespace) -> our rsyslog -> ``log_path``, with SIPp calls at ``rate``.

    For rotation tests: :attr:`rsyslog` gives the pid, pid file and :meth:`Rsyslog.hup`, so a
    logrotate ``postrotate`` can be ``kill -HUP $(cat <pid_file>)``. Calls run until :meth:`close`
    (or the ``with`` block ends); every call is a completed INVITE/ACK/BYE to a SIPp UAS.
    """

    rsyslog: Rsyslog
    namespace: MountNamespace
    kamailio: Kamailio
    uas: Sipp
    uac: Sipp | None  # None when started without a call rate
    log_path: Path


@contextlib.contextmanager
def syslog_pipeline(workdir: Path, log_path: Path, *, template: str = "RSYSLOG_FileFormat",
                    rate: float | None = 5.0, debug: int = 2, log_engine: str | None = None,
                    extra_outputs: Sequence[RsyslogOutput] = ()) -> Iterator[SyslogPipeline]:
    """Start rsyslog, Kamailio in syslog mode, a SIPp UAS, register it, and (unless ``rate`` is
    None) start calls at ``rate``/s. ``extra_outputs`` are more files rsyslog writes the same
    lines to (a witness that is never rotated)."""
    with contextlib.ExitStack() as stack:
        rsyslog = stack.enter_context(Rsyslog(workdir, [RsyslogOutput(log_path, template), *extra_outputs]))
        ns = stack.enter_context(MountNamespace(workdir, rsyslog.socket_path))
        kamailio = stack.enter_context(Kamailio(workdir, log_target="syslog", namespace=ns,
                                                debug=debug, log_engine=log_engine))
        uas_port = free_port()
        register = Sipp(workdir, "register.xml", remote=(LOOPBACK, kamailio.sip_port),
                        call_id="load-register@kamlog.test", keys={"user": "answer", "contact_port": uas_port},
                        name="sipp-load-register")
        result = register.run()
        if not result.ok:
            raise RunnerError(f"REGISTER failed: {result.output[-2000:]}")
        uas = stack.enter_context(Sipp(workdir, "uas-answer.xml", local_port=uas_port, calls=None,
                                       timeout=24 * 3600, name="sipp-load-uas"))
        uac = None
        if rate is not None:
            uac = stack.enter_context(Sipp(workdir, "uac-call.xml", remote=(LOOPBACK, kamailio.sip_port),
                                           keys={"callee": "answer"}, call_id="load-%u-%p@kamlog.test",
                                           calls=None, rate=rate, timeout=24 * 3600, name="sipp-load-uac"))
        yield SyslogPipeline(rsyslog, ns, kamailio, uas, uac, log_path)


__all__ = [
    "Journald", "Kamailio", "MountNamespace", "Process", "RSYSLOG_TEMPLATES", "Rsyslog", "RsyslogOutput",
    "RunnerError", "Sipp", "SippResult", "SyslogPipeline", "Tcpdump", "Tshark", "free_port", "free_ports",
    "render_config", "syslog_pipeline", "wait_for",
]
