"""Sustained load through the service: `kamlog collect` fed a live log and rotating captures at a
steady rate, stepped up to the highest rate it holds without falling behind; beside it, the rate
rsyslog itself writes Kamailio's lines to a file.

    python3 bench/collect.py                       # search the held rate (logs + captures), rsyslog's rate
    python3 bench/collect.py --rates 2000,4000     # only these steps (lines/s)
    python3 bench/collect.py --mode logs           # a log file only (no captures)
    python3 bench/collect.py --profile 3000        # one step under cProfile (every thread)

The traffic is bench/correlate.py's model of the real run of examples/ (Kamailio 5.6, debug=2,
RSYSLOG_FileFormat, and its tcpdump): calls of the sample drawn by its mix, starting at Poisson
arrivals, each call's packets and lines keeping their real delays after the call's start. Here
the calls are made as the clock goes: a writer process, every 50 ms, appends to the log the lines
due by now and writes the packets due by now into the current capture file, a new one every
second (tcpdump -G 1), so every timestamp is the wall clock's and calls close by the service's
clock. Each step runs a fresh service (a temporary state dir and store) for --duration seconds
and reads GET /health every second. See bench/README.md, "Service (issue 6)". Run by hand, never
in CI.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]
import capture as capture_bench  # noqa: E402  (PcapWriter, repetition_call_id)
import correlate as correlate_bench  # noqa: E402  (the sample calls, the mix, the line renderer)
import parse as parse_bench  # noqa: E402  (machine)

TICK = 0.05  # the writer's pacing: what is due is written every 50 ms
HZ = os.sysconf("SC_CLK_TCK")
SEED = 5060

# When a step is held (see `judge`). The service works in bursts (one loop stores a second's
# worth of finished calls at once, and its counters stand still meanwhile), so the verdict rests
# on trends and means over the measured window (after --warmup), sampled every second:
SLOPE_MAX = 0.05  # no lag (lines, packets, stored) grows by more than this many seconds per second
# (least squares over the window): the service reads and stores at >= 95% of the written rate;
LINES_LAG_MAX = 3.0  # the log lines not yet read, over the last third of the window: at most this
# many seconds of writing on average. The packets' and stored events' lags have floors of their
# own (a capture is taken once closed; a call is stored once quiet for call_timeout), so their
# bounds are those floors plus PACKETS_SLACK and STORED_SLACK seconds; and once the writer stops,
# everything written is read within CATCH_UP_SLACK seconds more than the packets' floor.
PACKETS_SLACK = 3.0
STORED_SLACK = 5.0
CATCH_UP_SLACK = 4.0
WRITER_SHARE = 0.97  # a step where the writer wrote less than this share of its rate is void


# =============================================================================================
# the live traffic


class Replay:
    """Calls of the sample made as time goes (bench/correlate.py's model, see `write_files`):
    drawn by the mix, at Poisson arrivals, each with a new Call-ID (`call-busy-1@kamlog.test` ->
    `call-busy-<n>-<tag>@kamlog.test`, in its packets and its lines), its own media ports and
    worker pids; the rtimer line once a second. `advance(now)` hands out what is due by now."""

    def __init__(self, sample: Any, lines_per_s: float, tag: str, seed: int = SEED) -> None:
        self.sample = sample
        self.tag = tag.encode()
        weights = [c.weight for c in sample.calls]
        total = sum(weights)
        self.lines_per_call = sum(w * len(c.lines) for w, c in zip(weights, sample.calls)) / total
        self.packets_per_call = sum(w * len(c.packets) for w, c in zip(weights, sample.calls)) / total
        self.call_rate = max(lines_per_s - 1, 0.1) / self.lines_per_call  # the rtimer writes 1 line/s
        self.weights = weights
        self.rng = random.Random(seed)
        self.stamp = correlate_bench._Stamps()
        self.calls = 0
        self.next_call_us: int | None = None
        self.next_tick_us: int | None = None
        self.ticks = 0
        self.seq = 0
        self.lines: list[tuple[int, int, str]] = []
        self.packets: list[tuple[int, int, Any, bytes]] = []

    def header(self, now_us: int) -> list[str]:
        """Kamailio's start-up lines, stamped now."""
        own = {ln.pid: self.sample.timer_pid for ln in self.sample.periodic if ln.pid is not None}
        return [correlate_bench._render(self.stamp, now_us, ln, own.get(ln.pid, ln.pid), None)
                for ln in self.sample.header]

    def advance(self, now_us: int) -> tuple[list[str], list[tuple[int, Any, bytes]]]:
        """The lines and packets due by `now_us`, in time order."""
        if self.next_call_us is None:
            self.next_call_us = now_us
            self.next_tick_us = now_us + 1_000_000
        sample, rng = self.sample, self.rng
        while self.next_call_us <= now_us:
            t = self.next_call_us
            call = rng.choices(sample.calls, self.weights)[0]
            n = self.calls
            call_id = capture_bench.repetition_call_id(call.call_id.encode(), n).replace(b"@", b"-" + self.tag + b"@", 1)
            cid = call_id.decode()
            pids = {pid: rng.choice(sample.pool) for pid in call.pids}
            for offset, msg in call.packets:
                self.seq += 1
                heapq.heappush(self.packets, (t + offset, self.seq, msg, msg.render(call_id, n)))
            for offset, line in call.lines:
                self.seq += 1
                pid = pids.get(line.pid, line.pid) if line.pid is not None else None
                heapq.heappush(self.lines, (t + offset, self.seq, correlate_bench._render(self.stamp, t + offset, line, pid, cid)))
            self.calls += 1
            self.next_call_us = t + max(1, round(rng.expovariate(self.call_rate) * 1_000_000))
        assert self.next_tick_us is not None
        while sample.periodic and self.next_tick_us <= now_us:
            line = sample.periodic[self.ticks % len(sample.periodic)]
            self.seq += 1
            heapq.heappush(self.lines, (self.next_tick_us, self.seq,
                                        correlate_bench._render(self.stamp, self.next_tick_us, line, sample.timer_pid, None)))
            self.ticks += 1
            self.next_tick_us += 1_000_000
        lines, packets = [], []
        while self.lines and self.lines[0][0] <= now_us:
            lines.append(heapq.heappop(self.lines)[2])
        while self.packets and self.packets[0][0] <= now_us:
            ts, _, msg, payload = heapq.heappop(self.packets)
            packets.append((ts, msg, payload))
        return lines, packets


def load_sample() -> Any:
    return correlate_bench.read_samples(correlate_bench.SAMPLE_PCAP, correlate_bench.SAMPLE_LOG)


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def writer_main(log_path: str | None, capture_dir: str | None, lines_per_s: float, tag: str, cpu: int | None,
                shared: Any, stop: Any) -> None:
    """The writer process: appends the due lines to the log and the due packets to the capture of
    the current second (`sip-YYYYmmddHHMMSS.pcap`, as tcpdump -w ... -G 1), every TICK, until
    `stop`. `shared`: lines written, packets written, CPU seconds of this process, ticks late."""
    _pin(cpu)
    sample = load_sample()
    replay = Replay(sample, lines_per_s, tag)
    log = open(log_path, "a", encoding="utf-8", newline="") if log_path else None
    second, fh, pcap = -1, None, None
    written_lines = written_packets = late = 0
    start = time.time()
    if log is not None:
        header = replay.header(int(start * 1e6))
        log.write("".join(header))
        log.flush()
        written_lines = len(header)
    due = start
    while not stop.is_set():
        now = time.time()
        lines, packets = replay.advance(int(now * 1e6))
        if log is not None and lines:
            log.write("".join(lines))
            log.flush()
            written_lines += len(lines)
        if capture_dir is not None:
            if int(now) != second:
                if fh is not None:
                    fh.close()
                second = int(now)
                name = time.strftime("sip-%Y%m%d%H%M%S.pcap", time.gmtime(second))
                fh = open(os.path.join(capture_dir, name), "wb")
                pcap = capture_bench.PcapWriter(fh)
            assert pcap is not None and fh is not None
            for ts, msg, payload in packets:
                pcap.udp(ts, msg, payload)
            pcap.flush()
            fh.flush()
            written_packets += len(packets)
        times = os.times()
        shared[0], shared[1], shared[2], shared[3] = written_lines, written_packets, times.user + times.system, late
        due += TICK
        pause = due - time.time()
        if pause > 0:
            stop.wait(pause)
        elif pause < -1:
            late += 1
            due = time.time()
    if fh is not None:
        fh.close()
    if log is not None:
        log.close()


# =============================================================================================
# the service


def _ticks(pid: int) -> int:
    """utime + stime of a process (every thread), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _core_busy(cpu: int | None) -> int:
    """Busy ticks (user, nice, system, irq, softirq, steal) of one core, or of all of them."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == name:
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[1:9])
                return user + nice + system + irq + softirq + steal
    return 0


def _hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


@dataclass
class Sample:
    t: float  # seconds since the step started
    written_lines: int
    written_packets: int
    counters: dict[str, int]
    ticks: int  # the service's CPU ticks
    writer_cpu: float
    core_busy: int  # busy ticks of the service's core (of all cores when not pinned)


@dataclass
class Step:
    rate: float  # lines/s asked of the writer
    mode: str
    duration: float
    warmup: float
    lines_per_s: float = 0.0  # written, over the measured window
    packets_per_s: float = 0.0
    calls_per_s: float = 0.0
    cpu_pct: float = 0.0  # of one core, the service over the measured window
    writer_cpu_pct: float = 0.0
    others_pct: float = 0.0  # other work (and steal) on the service's core, % of the core
    hwm_mib: float = 0.0
    max_waiting: int = 0
    slope: dict[str, float] = field(default_factory=dict)  # of each lag over the window, s/s
    mean_lag: dict[str, float] = field(default_factory=dict)  # over the window's last third, s
    held: bool = False
    why: str = ""
    catch_up_s: float | None = None  # after the writer stopped, until everything written was read
    stored_check: str = ""
    samples: list[Sample] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.lines_per_s + self.packets_per_s

    @property
    def events_per_cpu_s(self) -> float:
        """Events written per CPU-second the service used: what one free core would hold, if the
        service kept up (less telling when it did not)."""
        return self.events_per_s / (self.cpu_pct / 100) if self.cpu_pct else 0.0


def config_text(tmp: Path, mode: str, call_timeout: float, closed_after: float) -> str:
    logs = f'[[logs]]\npaths = ["{tmp / "kamailio.log"}"]\ngrammar = "kamailio-syslog-rfc3339"\n' if mode != "captures" else ""
    captures = (f'[[captures]]\nfiles = "{tmp / "captures" / "sip-*.pcap"}"\nclosed_after = {closed_after}\n'
                if mode != "logs" else "")
    return (f'[service]\nstate_dir = "{tmp / "state"}"\nhostname = "bench"\ncall_timeout = {call_timeout}\n'
            f'status = "127.0.0.1:0"\nstats_interval = 0\n\n{logs}\n{captures}\n[store]\npath = "{tmp / "store.db"}"\n')


_PORT = re.compile(r"status on http://[^:]+:(\d+)/health")
_STOPPED = re.compile(r"stopped: (.*)$", re.M)

PROFILE_BOOT = r"""
import cProfile, sys, threading, time
profiles = []
_run = threading.Thread.run
def run(self):
    if "process_request_thread" in self.name:  # the status server's request threads
        return _run(self)
    p = cProfile.Profile(time.thread_time)
    profiles.append((self.name, p))
    p.enable()
    try:
        _run(self)
    finally:
        p.disable()
threading.Thread.run = run
main = cProfile.Profile(time.thread_time)
profiles.append(("main", main))
from kamlog.cli import cli
main.enable()
try:
    cli(["collect", "--config", sys.argv[1]], prog_name="kamlog", standalone_mode=False)
finally:
    main.disable()
    for n, (name, p) in enumerate(profiles):
        p.dump_stats(f"{sys.argv[2]}.{n}.{name.replace('/', '_')[:60]}.prof")
"""


class Service:
    """`kamlog collect --config CFG` in a process of its own (pinned when asked), stopped by its PID."""

    def __init__(self, cfg: Path, cpu: int | None, profile_to: Path | None = None) -> None:
        self.stderr_path = cfg.with_name("collect.stderr")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        if profile_to is None:
            argv = [*pin, sys.executable, "-m", "kamlog", "collect", "--config", str(cfg)]
        else:
            argv = [*pin, sys.executable, "-c", PROFILE_BOOT, str(cfg), str(profile_to)]
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err, start_new_session=True)
        self.pid = self.proc.pid
        self.port = self._wait_port()

    def _wait_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _PORT.search(self.stderr_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"kamlog collect did not start:\n{self.stderr_path.read_text(errors='replace')[-3000:]}")

    def stop(self, timeout: float = 90) -> str:
        """SIGTERM (it drains), then SIGKILL after `timeout`; its stderr."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.err.close()
        return self.stderr_path.read_text(errors="replace")


def run_step(rate: float, args: argparse.Namespace, profile_to: Path | None = None) -> Step:
    step = Step(rate, args.mode, args.duration, args.warmup)
    tmp = Path(tempfile.mkdtemp(prefix="kamlog-collect-bench-", dir=args.tmp))
    ctx = mp.get_context("fork")
    writer = None
    service = None
    try:
        (tmp / "captures").mkdir()
        cfg = tmp / "kamlog.toml"
        cfg.write_text(config_text(tmp, args.mode, args.call_timeout, args.closed_after))
        service = Service(cfg, args.cpu, profile_to)
        shared = ctx.Array("d", 4, lock=False)
        stop = ctx.Event()
        writer = ctx.Process(target=writer_main, name="kamlog-bench-writer", args=(
            str(tmp / "kamailio.log") if args.mode != "captures" else None,
            str(tmp / "captures") if args.mode != "logs" else None,
            rate, f"r{int(rate)}", args.writer_cpu, shared, stop))
        started = time.monotonic()
        writer.start()
        next_at = started + 1
        while True:
            time.sleep(max(0.0, next_at - time.monotonic()))
            t = time.monotonic() - started
            counters = _health(service.port)["counters"]
            step.samples.append(Sample(t, int(shared[0]), int(shared[1]), counters, _ticks(service.pid), shared[2],
                                       _core_busy(args.cpu)))
            if t >= args.duration:
                break
            next_at += 1
        step.hwm_mib = _hwm_kib(service.pid) / 1024
        stop.set()
        writer.join(30)
        final_lines, final_packets = int(shared[0]), int(shared[1])
        waited = time.monotonic()
        while time.monotonic() - waited < args.settle:
            c = _health(service.port)["counters"]
            if c["lines"] >= final_lines and c["packets"] >= final_packets:
                step.catch_up_s = time.monotonic() - waited
                break
            time.sleep(0.1)
        if step.catch_up_s is not None:  # the calls still open close after call_timeout: let them be stored
            deadline = time.monotonic() + args.call_timeout + args.closed_after + 5
            while time.monotonic() < deadline and _health(service.port)["counters"]["waiting"] > 0:
                time.sleep(0.2)
        text = service.stop()
        service = None
        stopped = _STOPPED.findall(text)
        if step.catch_up_s is None:
            step.stored_check = "n/a (had not caught up when stopped)"
        elif stopped:
            final = dict(kv.split("=", 1) for kv in stopped[-1].split())
            want = final_lines + final_packets
            if int(final.get("events_stored", -1)) == want and int(final.get("store_added", -1)) == want:
                step.stored_check = "ok"
            else:
                step.stored_check = (f"stored {final.get('events_stored')} (added {final.get('store_added')}) of "
                                     f"{want} written")
        else:
            step.stored_check = "no final counters: " + " | ".join(text.strip().splitlines()[-3:])
        judge(step, args)
    finally:
        if writer is not None and writer.is_alive() and writer.pid is not None:
            os.kill(writer.pid, signal.SIGTERM)
            writer.join(10)
        if service is not None:
            service.stop()
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return step


def _lags(step: Step, s: Sample, lines_rate: float, packets_rate: float) -> tuple[float, float, float]:
    c = s.counters
    lag_lines = (s.written_lines - c["lines"]) / lines_rate if lines_rate else 0.0
    lag_packets = (s.written_packets - c["packets"]) / packets_rate if packets_rate else 0.0
    events = s.written_lines + s.written_packets
    lag_stored = (events - c["events_stored"]) / (lines_rate + packets_rate)
    return lag_lines, lag_packets, lag_stored


def judge(step: Step, args: argparse.Namespace) -> None:
    """Rates, CPU and lags over the measured window (samples after --warmup), and the verdict."""
    window = [s for s in step.samples if s.t >= step.warmup]
    first, last = window[0], window[-1]
    span = last.t - first.t
    step.lines_per_s = (last.written_lines - first.written_lines) / span
    step.packets_per_s = (last.written_packets - first.written_packets) / span
    step.cpu_pct = 100 * (last.ticks - first.ticks) / HZ / span
    step.writer_cpu_pct = 100 * (last.writer_cpu - first.writer_cpu) / span
    cores = 1 if args.cpu is not None else os.cpu_count() or 1
    step.others_pct = 100 * ((last.core_busy - first.core_busy) - (last.ticks - first.ticks)) / HZ / span / cores
    step.calls_per_s = step.lines_per_s / Replay(load_sample(), step.rate, "x").lines_per_call
    lags = [_lags(step, s, step.lines_per_s, step.packets_per_s) for s in window]
    step.max_waiting = max(s.counters["waiting"] for s in window)
    third = max(1, len(lags) // 3)
    floor_packets = 1 + args.closed_after  # the file of the current second, then closed_after
    bounds = {"lines": LINES_LAG_MAX, "packets": floor_packets + PACKETS_SLACK,
              "stored": args.call_timeout + floor_packets + STORED_SLACK}
    names = {"both": ("lines", "packets", "stored"), "logs": ("lines", "stored"),
             "captures": ("packets", "stored")}[step.mode]
    problems = []
    for i, name in enumerate(("lines", "packets", "stored")):
        step.slope[name] = _slope([s.t for s in window], [x[i] for x in lags])
        step.mean_lag[name] = sum(x[i] for x in lags[-third:]) / third
        if name not in names:
            continue
        if step.slope[name] > SLOPE_MAX:
            problems.append(f"{name} lag grows {step.slope[name]:.2f} s/s")
        elif step.mean_lag[name] > bounds[name]:
            problems.append(f"{name} {step.mean_lag[name]:.1f} s behind (bound {bounds[name]:g} s)")
    if step.catch_up_s is None or step.catch_up_s > floor_packets + CATCH_UP_SLACK:
        problems.append(f"caught up {'after ' + format(step.catch_up_s, '.1f') if step.catch_up_s is not None else 'not within ' + format(args.settle, 'g')} s "
                        f"after the writer stopped (bound {floor_packets + CATCH_UP_SLACK:g} s)")
    paused = last.counters.get("paused", 0)
    if paused:
        problems.append(f"reading paused {paused} times (a sink full, or max_waiting)")
    asked = step.rate if step.mode != "captures" else None
    if asked is not None and step.lines_per_s < WRITER_SHARE * asked:
        problems.append(f"the writer wrote only {step.lines_per_s:,.0f} lines/s")
    step.held = not problems
    step.why = "; ".join(problems)


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


# =============================================================================================
# rsyslog's own rate


_LEVEL_PRI = {"ALERT": 1, "BUG": 2, "CRITICAL": 2, "ERROR": 3, "WARNING": 4, "NOTICE": 5, "INFO": 6, "DEBUG": 7}
LOCAL0 = 16


def datagrams(count: int = 4096) -> list[bytes]:
    """What Kamailio's syslog(3) sends (`log_facility=LOG_LOCAL0`, `log_name="kamailio"`, glibc's
    header): `<PRI>Mmm dd hh:mm:ss kamailio[PID]: LEVEL: {prefix} module ...: message`, the lines
    of the replayed traffic (their Call-IDs and pids as the service's replay has them)."""
    replay = Replay(load_sample(), 10_000, "rs")
    lines: list[str] = []
    now = int(time.time() * 1e6)
    while len(lines) < count:
        now += 50_000
        lines += replay.advance(now)[0]
    out = []
    for line in lines[:count]:
        _stamp, _host, rest = line.rstrip("\n").split(" ", 2)
        tag, _, message = rest.partition(": ")
        level = message.split(":", 1)[0]
        pri = LOCAL0 * 8 + _LEVEL_PRI.get(level, 6)
        out.append(f"<{pri}>{time.strftime('%b %e %H:%M:%S')} {tag}: {message}".encode())
    return out


def client_main(path: str, messages: list[bytes], count: int, cpu: int | None, go: Any, done: Any, cpu_s: Any) -> None:
    _pin(cpu)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(path)
    send = sock.send
    n = len(messages)
    go.wait()
    started, times = time.monotonic(), os.times()
    for i in range(count):
        send(messages[i % n])
    done.value = time.monotonic() - started
    cpu_s.value = os.times().user + os.times().system - times.user - times.system
    sock.close()


@dataclass
class RsyslogRun:
    lines: int = 0
    seconds: float = 0.0
    send_seconds: float = 0.0
    cpu_pct: float = 0.0
    clients_cpu_pct: float = 0.0  # the senders' CPU, together
    hwm_mib: float = 0.0
    version: str = ""
    note: str = ""

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def rsyslog_rate(args: argparse.Namespace) -> RsyslogRun:
    """A private rsyslogd (tests/corpus/runners.py's: its own socket and work dir, `-n`, a file in
    RSYSLOG_FileFormat) fed Kamailio's datagrams as fast as --rsyslog-clients processes send them;
    lines it writes per second, from the first datagram to the last line in the file."""
    from tests.corpus.runners import Rsyslog, RsyslogOutput

    run = RsyslogRun()
    version = subprocess.run(["rsyslogd", "-v"], capture_output=True, text=True).stdout.splitlines()
    run.version = " ".join(version[0].split()[:2]) if version else "?"
    messages = datagrams()
    total = args.rsyslog_lines
    clients = args.rsyslog_clients
    with tempfile.TemporaryDirectory(prefix="kamlog-rsyslog-bench-", dir=args.tmp) as tmp:
        out = Path(tmp) / "kamailio.log"
        rs = Rsyslog(Path(tmp), [RsyslogOutput(out, "RSYSLOG_FileFormat")])
        rs.start()
        try:
            pid = rs.pid
            if args.cpu is not None:  # every thread of it, as kamlog collect is pinned whole
                for tid in os.listdir(f"/proc/{pid}/task"):
                    os.sched_setaffinity(int(tid), {args.cpu})
            ctx = mp.get_context("fork")
            go = ctx.Event()
            dones = [ctx.Value("d", 0.0) for _ in range(clients)]
            cpus = [ctx.Value("d", 0.0) for _ in range(clients)]
            procs = [ctx.Process(target=client_main, args=(str(rs.socket_path), messages, total // clients + (i < total % clients),
                                                           args.writer_cpu, go, dones[i], cpus[i])) for i in range(clients)]
            for p in procs:
                p.start()
            time.sleep(0.5)
            ticks0 = _ticks(pid)
            started = time.monotonic()
            go.set()
            seen, pos, last_change = 0, 0, started
            with open(out, "ab"):
                pass
            with open(out, "rb") as f:
                while seen < total and time.monotonic() - last_change < 5:
                    data = f.read(1 << 20)
                    if data:
                        seen += data.count(b"\n")
                        pos += len(data)
                        last_change = time.monotonic()
                    else:
                        time.sleep(0.005)
            run.seconds = last_change - started
            run.lines = seen
            run.cpu_pct = 100 * (_ticks(pid) - ticks0) / HZ / run.seconds
            run.hwm_mib = _hwm_kib(pid) / 1024
            for p in procs:
                p.join(30)
            run.send_seconds = max(d.value for d in dones)
            run.clients_cpu_pct = 100 * sum(c.value for c in cpus) / run.seconds
            if seen != total:
                run.note = f"{total - seen:,} of {total:,} lines missing from the file"
        finally:
            rs.stop()
    return run


# =============================================================================================
# Kamailio's own rates, for scale


def corpus_dir(args: argparse.Namespace) -> Path | None:
    if args.corpus is not None:
        return Path(args.corpus)
    try:
        from tests.corpus.fixtures import corpus_key
    except ImportError:
        return None
    path = REPO / ".pytest_cache" / "d" / "kamlog-corpus" / corpus_key()
    return path if (path / "manifest.json").is_file() else None


def kamailio_rates(args: argparse.Namespace) -> list[tuple[str, float]]:
    """Log lines per call of the replayed mix at debug=2 (examples/: the lines that name the call)
    and at debug=3 (the corpus' syslog run, where the calls come one after the other: every line
    from the first that names a call to the last, its workers' and the timers' alike), each call
    weighted by the mix."""
    sample = load_sample()
    weights = {c.call_id: c.weight for c in sample.calls}
    debug2 = sum(w * len(c.lines) for w, c in zip(weights.values(), sample.calls)) / sum(weights.values())
    packets = sum(w * len(c.packets) for w, c in zip(weights.values(), sample.calls)) / sum(weights.values())
    notes = [(f"debug=2 (examples/kamailio.log): {debug2:.1f} lines per call of the mix ({packets:.1f} packets)", debug2)]
    corpus = corpus_dir(args)
    if corpus is not None:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        lines = (corpus / "syslog-rfc3339.log").read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            for call_id in weights:
                if call_id in line:
                    first.setdefault(call_id, n)
                    last[call_id] = n
        if set(first) == set(weights):
            span = {c: last[c] - first[c] + 1 for c in weights}
            debug3 = sum(weights[c] * span[c] for c in weights) / sum(weights.values())
            completed = next((v for c, v in span.items() if c.startswith("call-completed")), 0)
            notes.append((f"debug=3 ({corpus.name}/syslog-rfc3339.log): {debug3:.0f} lines per call of the mix "
                          f"({completed} for a completed call)", debug3))
    return notes


# =============================================================================================
# the search and the report


def search(args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []

    def run(rate: float, attempt: int = 0) -> Step:
        step = run_step(rate, args)
        steps.append(step)
        print(f"  {rate:>9,.0f} lines/s asked: {step.lines_per_s:>9,.0f} lines/s + {step.packets_per_s:>8,.0f} packets/s "
              f"written, {'held' if step.held else 'NOT held'} (mean lag lines {step.mean_lag['lines']:.1f} s, packets "
              f"{step.mean_lag['packets']:.1f} s, stored {step.mean_lag['stored']:.1f} s; waiting <= {step.max_waiting:,}; "
              f"CPU {step.cpu_pct:.0f}%, others on its core {step.others_pct:.0f}%, RSS {step.hwm_mib:.0f} MiB)"
              f"{' ' + step.why if step.why else ''}",
              file=sys.stderr)
        if not step.held and attempt < args.retries:  # other work on the machine only ever slows it down
            return run(rate, attempt + 1)
        return step

    if args.rates:
        for rate in args.rates:
            run(rate)
        return steps
    rate = float(args.start)
    best: float | None = None
    failed: float | None = None
    while True:
        step = run(rate)
        if step.held:
            best = rate
            if failed is not None or rate * 2 > args.max_rate:
                break
            rate *= 2
        else:
            failed = rate
            if best is not None or rate / 2 < 50:
                break
            rate /= 2
    if best is None or failed is None:
        return steps
    for _ in range(args.bisect):
        rate = round((best + failed) / 2, -1)
        if rate in (best, failed):
            break
        if run(rate).held:
            best = rate
        else:
            failed = rate
    return steps


def report(steps: list[Step], rs: RsyslogRun | None, notes: list[tuple[str, float]], args: argparse.Namespace,
           info: dict[str, str]) -> str:
    end = parse_bench.machine()["commit"]
    if end != info["commit"]:
        info = {**info, "commit": f"{info['commit']} at the start, {end} at the end"}
    held = [s for s in steps if s.held]
    best = max(held, key=lambda s: s.lines_per_s) if held else None
    lines = [f"# kamlog collect under sustained load ({args.mode}; {args.duration:g} s a step, measured after "
             f"{args.warmup:g} s; call_timeout {args.call_timeout:g} s, closed_after {args.closed_after:g} s)", "",
             f"{info['date']}, {info['cpu']} x{info['nproc']}, {info['python']}, load {info['load average']}, "
             f"commit {info['commit']}; service pinned to CPU {args.cpu}, writer to CPU {args.writer_cpu}"
             if args.cpu is not None else f"{info['date']}, {info['cpu']} x{info['nproc']}, {info['python']}, "
             f"load {info['load average']}, commit {info['commit']}; nothing pinned", ""]
    lines += ["| | lines/s | packets/s | calls/s | share of rsyslog's lines/s | CPU % of a core | peak RSS MiB |",
              "|---|--:|--:|--:|--:|--:|--:|"]
    if rs is not None:
        lines.append(f"| rsyslogd writes Kamailio's lines to a file | {rs.rate:,.0f} | - | - | 100% "
                     f"| {rs.cpu_pct:.0f} | {rs.hwm_mib:.1f} |")
    by_rate: dict[float, Step] = {}
    for s in steps:  # per rate, a run that held, else the last
        if s.rate not in by_rate or not by_rate[s.rate].held:
            by_rate[s.rate] = s
    for s in sorted(by_rate.values(), key=lambda s: s.rate):
        tries = sum(1 for t in steps if t.rate == s.rate)
        verdict = "**held**" if s is best else "held" if s.held else "not held"
        name = f"kamlog collect, {s.rate:,.0f} lines/s asked: {verdict}" + (f" ({tries} runs)" if tries > 1 else "")
        share = f"{s.lines_per_s / rs.rate:.1%}" if rs is not None and rs.rate else "-"
        lines.append(f"| {name} | {s.lines_per_s:,.0f} | {s.packets_per_s:,.0f} | {s.calls_per_s:,.0f} | {share} "
                     f"| {s.cpu_pct:.0f} | {s.hwm_mib:.0f} |")
    lines += ["", "Every step, in the order run (mean lags over the last third of the measured window; slopes: "
              "least squares over the window; catch-up: once the writer stopped, until everything written was read):", "",
              "| lines/s asked | events/s | events per CPU-s | others on its core % | mean lag lines/packets/stored s "
              "| lag slope l/p/s s/s | max waiting | catch-up s | writer CPU % | store check | verdict |",
              "|--:|--:|--:|--:|--|--|--:|--:|--:|--|--|"]
    for s in steps:
        lag = "/".join(f"{s.mean_lag.get(k, 0):.1f}" for k in ("lines", "packets", "stored"))
        slope = "/".join(f"{s.slope.get(k, 0):+.2f}" for k in ("lines", "packets", "stored"))
        catch = f"{s.catch_up_s:.1f}" if s.catch_up_s is not None else f"> {args.settle:g}"
        lines.append(f"| {s.rate:,.0f} | {s.events_per_s:,.0f} | {s.events_per_cpu_s:,.0f} | {s.others_pct:.0f} "
                     f"| {lag} | {slope} | {s.max_waiting:,} | {catch} | {s.writer_cpu_pct:.0f} | {s.stored_check} "
                     f"| {'held' if s.held else 'not held: ' + s.why} |")
    lines.append("")
    if best is not None:
        lines.append(f"Highest rate held: {best.lines_per_s:,.0f} lines/s + {best.packets_per_s:,.0f} packets/s "
                     f"({best.calls_per_s:,.0f} calls/s of the mix), CPU {best.cpu_pct:.0f}% of a core, peak RSS "
                     f"{best.hwm_mib:.0f} MiB" + (f"; {best.lines_per_s / rs.rate:.1%} of the lines/s rsyslogd writes"
                                                   if rs is not None and rs.rate else "") + ".")
    else:
        lines.append("No step was held.")
    if held and best is not None:
        per_cpu = sorted(s.events_per_cpu_s for s in held)[len(held) // 2]
        lines.append(f"Events per CPU-second the service used, median of the held steps: {per_cpu:,.0f} (what one "
                     f"core free of other work would hold at this mix, about {per_cpu / (1 + best.packets_per_s / best.lines_per_s):,.0f} "
                     f"lines/s with their packets, if the service's cost stays linear).")
    if rs is not None:
        qlen = Path("/proc/sys/net/unix/max_dgram_qlen").read_text().strip()
        lines.append(f"rsyslogd ({rs.version}): {rs.lines:,} datagrams from {args.rsyslog_clients} clients in "
                     f"{rs.send_seconds:.2f} s (their CPU {rs.clients_cpu_pct:.0f}% of a core), all written in "
                     f"{rs.seconds:.2f} s; net.unix.max_dgram_qlen = {qlen}{'; ' + rs.note if rs.note else ''}.")
    lines += [f"Kamailio at {n}" + (f": the held rate is {best.lines_per_s / per_call:,.0f} calls/s." if best else ".")
              for n, per_call in notes]
    return "\n".join(lines) + "\n"


def profile(rate: float, args: argparse.Namespace) -> str:
    import pstats

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "collect-profile"
    for old in args.out.glob("collect-profile.*.prof"):
        old.unlink()
    step = run_step(rate, args, profile_to=stem)
    out = [f"# cProfile of kamlog collect at {rate:,.0f} lines/s asked ({step.lines_per_s:,.0f} lines/s + "
           f"{step.packets_per_s:,.0f} packets/s written; {'held' if step.held else 'not held: ' + step.why} under "
           f"the profiler; CPU {step.cpu_pct:.0f}%)"]
    import io

    for path in sorted(args.out.glob("collect-profile.*.prof")):
        stats: Any = pstats.Stats(str(path))
        if stats.total_tt < 0.05:
            path.unlink()
            continue
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        out += ["", f"## thread {path.name.split('.', 2)[2].rsplit('.', 1)[0]}: {stats.total_tt:.1f} s", buf.getvalue()]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("both", "logs", "captures"), default="both",
                        help="what the writer writes: the log and the captures (default), or one of them")
    parser.add_argument("--start", type=float, default=1000, help="the first step's lines/s (default 1000)")
    parser.add_argument("--max-rate", type=float, default=400_000)
    parser.add_argument("--bisect", type=int, default=3, help="steps between the last held and first failed rate")
    parser.add_argument("--retries", type=int, default=1,
                        help="a step not held is run again this many times; held if any run is (default 1)")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], help="only these lines/s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of a step (default 30)")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds of a step not measured (default 6)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait for the service to catch up")
    parser.add_argument("--call-timeout", type=float, default=2.0)
    parser.add_argument("--closed-after", type=float, default=1.0)
    parser.add_argument("--cpu", type=int, default=1, help="the core of the service and rsyslogd (default 1)")
    parser.add_argument("--writer-cpu", type=int, default=0, help="the core of the writer and clients (default 0)")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--no-rsyslog", action="store_true")
    parser.add_argument("--rsyslog-lines", type=int, default=1_000_000)
    parser.add_argument("--rsyslog-clients", type=int, default=2)
    parser.add_argument("--corpus", type=Path, help="a corpus directory (default: the test suite's cached one)")
    parser.add_argument("--profile", type=float, metavar="LINES_PER_S", help="one step under cProfile, every thread")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--tmp", type=Path, default=None, help="where the steps' temporary dirs go")
    parser.add_argument("--keep", action="store_true", help="keep the steps' temporary dirs")
    args = parser.parse_args(argv)
    if args.no_pin:
        args.cpu = args.writer_cpu = None
    if args.profile:
        text = profile(args.profile, args)
        (args.out / "collect-profile.txt").write_text(text)
        print(text)
        return 0
    info = parse_bench.machine()
    runs: list[RsyslogRun] = []

    def measure_rsyslog() -> None:
        if not args.no_rsyslog:
            runs.append(rsyslog_rate(args))
            r = runs[-1]
            print(f"  rsyslogd: {r.rate:,.0f} lines/s written ({r.lines:,} in {r.seconds:.2f} s; sent in "
                  f"{r.send_seconds:.2f} s), CPU {r.cpu_pct:.0f}%, RSS {r.hwm_mib:.1f} MiB", file=sys.stderr)

    measure_rsyslog()
    steps = search(args)
    measure_rsyslog()  # before and after the service's steps: the faster counts (other work only slows it)
    rs = max(runs, key=lambda r: r.rate) if runs else None
    if rs is not None and len(runs) > 1:
        rs.note = "; ".join(filter(None, [rs.note, "the runs before and after the steps: " +
                                          " and ".join(f"{r.rate:,.0f}" for r in runs) + " lines/s"]))
    text = report(steps, rs, kamailio_rates(args), args, info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "collect-results.md").write_text(text)
    (args.out / "collect-steps.json").write_text(json.dumps([asdict(s) for s in steps], indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
