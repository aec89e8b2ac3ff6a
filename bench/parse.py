"""Parse speed and memory of kamlog beside the floors: `wc -l`, `cat` and a bare `re` loop.

    python3 bench/parse.py [--lines 2000000] [--formats kamailio-syslog ...] [--runs 3] [--out bench/out]
    python3 bench/parse.py --profile --formats kamailio-syslog   # where the time goes (cProfile)

Generates one large log per format from the real samples of tests/grammars/<grammar>/ (cached in
--out), then times every measurement in its own process pinned to one core, best of --runs, with
the peak RSS of that process alone (wait4). See bench/README.md for the columns and the targets.
Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from functools import cache
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "grammars"
BLOCK = 1 << 20  # what kamlog.pipeline.read_events reads at a time

#: Format -> (grammar, sample case): one per grammar; `grammar/case` picks another sample.
FORMATS: dict[str, tuple[str, str]] = {
    "kamailio-syslog": ("kamailio-syslog", "traditional"),
    "kamailio-syslog-rfc3339": ("kamailio-syslog-rfc3339", "text"),
    "kamailio-syslog-rfc5424": ("kamailio-syslog-rfc5424", "text"),
    "kamailio-stderr": ("kamailio-stderr", "plain"),
    "kamailio-json": ("kamailio-json", "c"),
    "journald-json": ("journald-json", "journal"),
}

#: Bump when the generated text changes, so cached logs are rewritten.
GENERATOR_VERSION = 1

# Targets of issue 2, section 5 (traditional syslog).
TARGET_FORMAT = "kamailio-syslog"
TARGET_LINES_PER_S = 500_000
TARGET_SHARE_OF_BARE = 0.60
FLAT_TOLERANCE_MB = 8.0  # peak RSS of the full file may exceed the 1/4 file's by this much


# =============================================================================================
# generating the logs


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NO = {name: i for i, name in enumerate(_MONTHS, 1)}
#: RFC 3164 stamps have no year: the samples' year (their RFC 3339 siblings say 2026).
_SAMPLE_YEAR = 2026

# What varies between repetitions of the sample. One alternation, outer groups only.
_SLOTS = re.compile(
    r"(?P<rfc3339>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r"|(?P<rfc3164>\b(?:" + "|".join(_MONTHS) + r") [ \d]\d \d\d:\d\d:\d\d)"
    r'|(?P<epoch>(?<="__REALTIME_TIMESTAMP":")\d{13,}|(?<="_SOURCE_REALTIME_TIMESTAMP":")\d{13,})'
    r'|(?P<mono>(?<="__MONOTONIC_TIMESTAMP":")\d+)'
    r"|(?P<callid>(?<=-)1(?=@kamlog\.test))"  # the corpus' Call-IDs: register-answer-1@kamlog.test
    r"|(?P<pid>\b\d{3,7}\b)"  # kept only when it is one of the sample's pids
)
# Where each format writes its pid: these numbers are the pids to vary, wherever they appear.
_PID_SITES = re.compile(
    r"kamailio\[(\d+)\]"  # syslog tag
    r"|^(?:\x1b\[[0-9;]*m)*\s*\d+\((\d+)\) "  # stderr ` 2(13070) `
    r'|"(?:kamailio\.)?pid": (\d+)'  # Kamailio's JSON engine
    r'|"(?:_PID|SYSLOG_PID)":"(\d+)"'  # journald
    r'|"proc":\{"id":"(\d+)"'  # CEE
    r"|^<\d+>1 \S+ \S+ \S+ (\d+) ",  # RFC 5424 PROCID
    re.M,
)


@dataclass
class _Slot:
    kind: str
    text: str
    value: Any = None  # parsed: datetime, int


@dataclass
class Template:
    """The sample as literal text and slots, rendered once per repetition with shifted values."""

    parts: list[str | _Slot]
    lines: int  # physical lines per repetition
    period: int  # seconds between the starts of two repetitions

    @classmethod
    def from_sample(cls, text: str) -> Template:
        if not text.endswith("\n"):
            text += "\n"
        pids = {int(n) for m in _PID_SITES.finditer(text) for n in m.groups() if n}
        parts: list[str | _Slot] = []
        pos = 0
        seconds: dict[str, list[float]] = {}
        for m in _SLOTS.finditer(text):
            kind = m.lastgroup
            assert kind is not None
            raw = m.group()
            slot = _Slot(kind, raw)
            if kind == "rfc3339":
                head, zone = raw[:19], raw[19:]
                frac = ""
                if zone.startswith("."):
                    digits = re.match(r"\.(\d+)", zone)
                    assert digits is not None
                    frac, zone = digits.group(1), zone[digits.end():]
                slot.value = (datetime.strptime(head, "%Y-%m-%dT%H:%M:%S"), frac, zone)
                seconds.setdefault(kind, []).append(slot.value[0].timestamp())
            elif kind == "rfc3164":
                stamp = datetime(_SAMPLE_YEAR, _MONTH_NO[raw[:3]], int(raw[4:6]),
                                 int(raw[7:9]), int(raw[10:12]), int(raw[13:15]))
                slot.value = stamp
                seconds.setdefault(kind, []).append(stamp.timestamp())
            elif kind == "epoch":
                slot.value = int(raw)
                seconds.setdefault(kind, []).append(int(raw) / 1e6)
            elif kind == "mono":
                slot.value = int(raw)
            elif kind == "pid":
                if int(raw) not in pids:
                    continue
                slot.value = int(raw)
            parts.append(text[pos:m.start()])
            parts.append(slot)
            pos = m.end()
        parts.append(text[pos:])
        span = max((int(max(v) - min(v)) for v in seconds.values()), default=0)
        merged: list[str | _Slot] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif part != "":
                merged.append(part)
        return cls(merged, text.count("\n"), span + 1)

    def render(self, rep: int) -> str:
        """Repetition `rep`: timestamps later by rep * period, pids and Call-IDs of its own."""
        shift = rep * self.period
        delta = timedelta(seconds=shift)
        pid_delta = (rep % 1000) * 20  # a new set of worker pids for each repetition
        call = str(rep + 1)
        memo: dict[str, str] = {}
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            kind = part.kind
            if kind == "callid":
                out.append(call)
            elif kind == "pid":
                out.append(str(part.value + pid_delta))
            elif kind == "epoch":
                out.append(str(part.value + shift * 1_000_000))
            elif kind == "mono":
                out.append(str(part.value + shift * 1_000_000))
            else:
                done = memo.get(part.text)
                if done is None:
                    if kind == "rfc3164":
                        t = part.value + delta
                        done = f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"
                    else:
                        stamp, frac, zone = part.value
                        done = f"{stamp + delta:%Y-%m-%dT%H:%M:%S}{'.' + frac if frac else ''}{zone}"
                    memo[part.text] = done
                out.append(done)
        return "".join(out)


@dataclass
class LogFile:
    path: Path
    lines: int
    bytes: int


def sample_path(grammar: str, case: str) -> Path:
    return SAMPLES / grammar / f"{case}.log"


def generate(sample: Path, target: Path, lines: int) -> LogFile:
    """`target` with whole repetitions of `sample` up to at least `lines` lines; cached."""
    raw = sample.read_bytes()
    meta_path = target.with_name(target.name + ".meta.json")
    wanted = {"lines": lines, "sample": str(sample.relative_to(REPO)),
              "sample_sha256": hashlib.sha256(raw).hexdigest(), "generator": GENERATOR_VERSION}
    if target.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if {k: meta.get(k) for k in wanted} == wanted and target.stat().st_size == meta.get("bytes"):
            return LogFile(target, meta["physical_lines"], meta["bytes"])
    template = Template.from_sample(raw.decode("utf-8", "surrogateescape"))
    reps = -(-lines // template.lines)
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        chunk: list[str] = []
        for rep in range(reps):
            chunk.append(template.render(rep))
            if len(chunk) >= 2000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))
    os.replace(tmp, target)
    size = target.stat().st_size
    meta_path.write_text(json.dumps({**wanted, "physical_lines": reps * template.lines, "bytes": size,
                                     "repetitions": reps, "period_s": template.period}, indent=1))
    print(f"  generated {target.name}: {reps * template.lines:,} lines, {size / 1e6:,.0f} MB "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return LogFile(target, reps * template.lines, size)


# =============================================================================================
# the measured children (run as `parse.py --child MODE ...`, one process each)


def child_bare(path: str, regex_file: str) -> dict[str, Any]:
    """The Python floor: 1 MiB blocks, decode, split lines, one compiled re.match per line."""
    spec = json.loads(Path(regex_file).read_text())
    match = re.compile(spec["pattern"], spec["flags"]).match
    started = time.perf_counter()
    lines = matched = 0
    with open(path, "rb") as fh:
        rest = b""
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            text = data[:cut].decode("utf-8", "replace").split("\n")
            text.pop()
            lines += len(text)
            for line in text:
                if match(line) is not None:
                    matched += 1
        if rest:
            lines += 1
            matched += match(rest.decode("utf-8", "replace")) is not None
    return {"lines": lines, "matched": matched, "loop_s": time.perf_counter() - started}


def child_kamlog(path: str, grammar: str, fields: str) -> dict[str, Any]:
    """kamlog's own parse path (`tail --no-follow -n all`), consumed like a filter would."""
    started = time.perf_counter()
    from kamlog.parsing.options import ParseOptions
    from kamlog.pipeline import read_events

    imported = time.perf_counter()
    events = no_level = 0
    if fields == "none":
        for _event in read_events(path, 0, ParseOptions(grammar=grammar)):
            events += 1
    elif fields == "level":
        for event in read_events(path, 0, ParseOptions(grammar=grammar)):
            if event.level_no is None:
                no_level += 1
            events += 1
    else:
        for event in read_events(path, 0, ParseOptions(grammar=grammar)):
            if event.level_no is None:
                no_level += 1
            event.call_id
            event.timestamp
            events += 1
    return {"events": events, "no_level": no_level, "import_s": imported - started,
            "loop_s": time.perf_counter() - imported}


def child_profile(path: str, grammar: str, fields: str, top: int) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = child_kamlog(path, grammar, fields)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    result["profile"] = out.getvalue()
    return result


def run_child(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="parse.py --child")
    parser.add_argument("mode", choices=["bare", "kamlog", "profile"])
    parser.add_argument("path")
    parser.add_argument("--regex-file")
    parser.add_argument("--grammar")
    parser.add_argument("--fields", default="level", choices=["none", "level", "all"])
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    if args.mode == "bare":
        result = child_bare(args.path, args.regex_file)
    elif args.mode == "kamlog":
        result = child_kamlog(args.path, args.grammar, args.fields)
    else:
        result = child_profile(args.path, args.grammar, args.fields, args.top)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# =============================================================================================
# measuring


@dataclass
class Run:
    wall_s: float
    maxrss_kb: int
    cpu_s: float  # user + system
    output: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measurement:
    format: str
    name: str
    file: LogFile
    runs: list[Run]
    note: str = ""

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall_s)

    @property
    def lines_per_s(self) -> float:
        return self.file.lines / self.best.wall_s

    @property
    def mb_per_s(self) -> float:
        return self.file.bytes / 1e6 / self.best.wall_s

    @property
    def peak_rss_mb(self) -> float:
        return max(r.maxrss_kb for r in self.runs) / 1024

    @property
    def loop_lines_per_s(self) -> float | None:
        loop = self.best.output.get("loop_s")
        return self.file.lines / loop if loop else None


def pin_prefix(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    taskset = shutil.which("taskset")
    if taskset is None or cpu not in os.sched_getaffinity(0):
        print(f"  note: cannot pin to CPU {cpu} (taskset missing or CPU not allowed); not pinned", file=sys.stderr)
        return []
    return [taskset, "-c", str(cpu)]


def run_once(cmd: Sequence[str], json_out: bool) -> Run:
    """Wall time and peak RSS of one process.

    The peak RSS comes from GNU time when installed: a process forked from this (large) Python
    process starts with this process' high-water mark, which Linux carries over exec into
    ru_maxrss. `/usr/bin/time` is small, so its child's ru_maxrss is the command's own.
    Without it, wait4's ru_maxrss is used (an upper bound: at least this process' RSS).
    """
    gnu_time = _gnu_time()
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        full = [gnu_time, "-f", "%M %U %S", "-o", rss.name, *cmd] if gnu_time else list(cmd)
        started = time.perf_counter()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stderr=err,
                                stdout=subprocess.PIPE if json_out else subprocess.DEVNULL)
        data = proc.stdout.read() if proc.stdout is not None else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{err.read().decode(errors='replace')[-3000:]}")
        maxrss_kb, cpu_s = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if gnu_time:
            kb, user, system = rss.read().split()[-3:]
            maxrss_kb, cpu_s = int(kb), float(user) + float(system)
    output: dict[str, Any] = {}
    if json_out:
        text = data.decode()
        try:
            output = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            output = {"stdout": text.strip()}
    return Run(wall, maxrss_kb, cpu_s, output)


@cache
def _gnu_time() -> str | None:
    path = "/usr/bin/time"
    if not os.access(path, os.X_OK):
        return None
    probe = subprocess.run([path, "-f", "%M %U %S", "true"], capture_output=True, text=True)
    return path if probe.returncode == 0 and len(probe.stderr.split()) == 3 else None


@dataclass
class Spec:
    name: str
    file: LogFile
    cmd: list[str]
    json_out: bool = False


def measure_all(fmt: str, specs: list[Spec], runs: int) -> list[Measurement]:
    """Every measurement `runs` times, round-robin (A B C A B C ...), so that a slow spell of a
    shared machine hits all of them alike instead of one."""
    done = [Measurement(fmt, spec.name, spec.file, []) for spec in specs]
    for round_no in range(1, runs + 1):
        for spec, m in zip(specs, done):
            run = run_once(spec.cmd, spec.json_out)
            m.runs.append(run)
            print(f"  {fmt:<24} {spec.name:<36} run {round_no}/{runs} {spec.file.lines / run.wall_s:>12,.0f} lines/s "
                  f"{run.wall_s:7.2f} s  CPU {run.cpu_s:7.2f} s  peak RSS {run.maxrss_kb / 1024:6.1f} MiB", file=sys.stderr)
    return done


def regex_file(out: Path, grammar: str) -> Path:
    """The grammar's first compiled pattern, for the bare loop (which must not import kamlog)."""
    from kamlog.parsing.grammar import get_grammar

    regex = get_grammar(grammar).patterns[0].regex
    path = out / f"{grammar}.regex.json"
    path.write_text(json.dumps({"pattern": regex.pattern, "flags": regex.flags}))
    return path


def detected_grammar(path: Path) -> str | None:
    from kamlog.parsing.options import ParseOptions

    with open(path, "rb") as fh:
        head = fh.read(BLOCK)
    try:
        return ParseOptions().grammar_for(str(path), head).name
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"error: {exc}"


def bench_format(fmt: str, grammar: str, case: str, args: argparse.Namespace, pin: list[str]) -> list[Measurement]:
    out: Path = args.out
    sample = sample_path(grammar, case)
    big = generate(sample, out / f"{fmt.replace('/', '-')}.log", args.lines)
    small = generate(sample, out / f"{fmt.replace('/', '-')}.quarter.log", args.lines // 4)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    rx = regex_file(out, grammar)
    path = str(big.path)
    found = detected_grammar(big.path)
    specs = [
        Spec("wc -l", big, [*pin, "wc", "-l", path], json_out=True),
        Spec("cat > /dev/null", big, [*pin, "cat", path]),
        Spec("bare re loop", big, [*pin, *me, "bare", path, "--regex-file", str(rx)], json_out=True),
        Spec("kamlog events", big, [*pin, *me, "kamlog", path, "--grammar", grammar, "--fields", "none"],
             json_out=True),
        Spec("kamlog level_no", big, [*pin, *me, "kamlog", path, "--grammar", grammar], json_out=True),
        Spec("kamlog level+call_id+time", big,
             [*pin, *me, "kamlog", path, "--grammar", grammar, "--fields", "all"], json_out=True),
        Spec("kamlog level_no, 1/4 file", small, [*pin, *me, "kamlog", str(small.path), "--grammar", grammar],
             json_out=True),
        Spec("kamlog level+call_id+time, 1/4 file", small,
             [*pin, *me, "kamlog", str(small.path), "--grammar", grammar, "--fields", "all"], json_out=True),
    ]
    if not args.no_cli:
        kamlog = [sys.executable, "-m", "kamlog", "tail", "--no-follow", "-n", "all"]
        for style in ("json", "text"):
            specs.append(Spec(f"CLI tail --format {style}", big, [*pin, *kamlog, "--format", style, path]))
    results = measure_all(fmt, specs, args.runs)
    bare = results[2].best.output
    if bare.get("matched") != bare.get("lines"):
        results[2].note = f"first pattern matched {bare.get('matched'):,} of {bare.get('lines'):,} lines"
    for m in results:
        if m.name.startswith("kamlog"):
            out_ = m.best.output
            m.note = f"{out_.get('events'):,} events, {out_.get('no_level'):,} without level; import {out_.get('import_s', 0):.2f} s"
    if found != grammar:
        for m in results:
            if m.name.startswith("CLI"):
                m.note = f"the CLI detects {found!r}, not {grammar!r}"
    return results


# =============================================================================================
# reporting


def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "kamlog", "grammars"],
                               capture_output=True, text=True).stdout.strip()
        commit += " (kamlog/ or grammars/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": platform.release(),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit,
    }


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}" if x >= 0.01 else f"{x:.4f}"


def table(results: list[Measurement]) -> list[str]:
    rows = ["| format | measurement | lines | lines/s | MB/s | vs bare re | vs wc -l | peak RSS MiB | best s | CPU s | in-loop lines/s | note |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    by_format: dict[str, list[Measurement]] = {}
    for m in results:
        by_format.setdefault(m.format, []).append(m)
    for fmt, ms in by_format.items():
        bare = next(m for m in ms if m.name == "bare re loop")
        wc = next(m for m in ms if m.name == "wc -l")
        for m in ms:
            loop = m.loop_lines_per_s
            rows.append(
                f"| {fmt} | {m.name} | {m.file.lines:,} | {m.lines_per_s:,.0f} | {m.mb_per_s:,.1f} "
                f"| {fmt_ratio(m.lines_per_s / bare.lines_per_s)} | {fmt_ratio(m.lines_per_s / wc.lines_per_s)} "
                f"| {m.peak_rss_mb:,.1f} | {m.best.wall_s:.2f} | {m.best.cpu_s:.2f} | {f'{loop:,.0f}' if loop else ''} | {m.note} |"
            )
    return rows


def verdicts(results: list[Measurement]) -> list[str]:
    out = []
    by_format: dict[str, dict[str, Measurement]] = {}
    for m in results:
        by_format.setdefault(m.format, {})[m.name] = m
    for fmt, ms in by_format.items():
        for name in ("kamlog level_no", "kamlog level+call_id+time"):
            big, quarter = ms[name], ms[f"{name}, 1/4 file"]
            grow = big.peak_rss_mb - quarter.peak_rss_mb
            flat = grow <= FLAT_TOLERANCE_MB
            out.append(f"- {fmt}, {name}: memory {'flat' if flat else 'NOT flat'} in file size: peak RSS "
                       f"{big.peak_rss_mb:.1f} MiB for {big.file.lines:,} lines vs {quarter.peak_rss_mb:.1f} MiB "
                       f"for {quarter.file.lines:,} lines ({grow:+.1f} MiB)")
        full = ms["kamlog events"]
        if fmt == TARGET_FORMAT:
            rate, share = full.lines_per_s, full.lines_per_s / ms["bare re loop"].lines_per_s
            out.append(f"- {fmt}: target >= {TARGET_LINES_PER_S:,} lines/s: {rate:,.0f} lines/s "
                       f"({'met' if rate >= TARGET_LINES_PER_S else 'NOT met'}); "
                       f"{full.file.lines / full.best.cpu_s:,.0f} per CPU second; in-loop {full.loop_lines_per_s or 0:,.0f}")
            bare = ms["bare re loop"]
            by_cpu = bare.best.cpu_s / full.best.cpu_s
            in_loop = (full.loop_lines_per_s or 0) / (bare.loop_lines_per_s or 1)
            out.append(f"- {fmt}: target >= {TARGET_SHARE_OF_BARE:.0%} of the bare re loop: {share:.0%} "
                       f"({'met' if share >= TARGET_SHARE_OF_BARE else 'NOT met'}); by CPU time {by_cpu:.0%}, "
                       f"in-loop {in_loop:.0%}")
    return out


def report(results: list[Measurement], info: dict[str, str], args: argparse.Namespace, pin: list[str]) -> str:
    lines = ["# kamlog parse benchmark", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [f"- pinned: {' '.join(pin) if pin else 'no'}; best of {args.runs} runs; wall time of the whole process",
              f"- command: python3 bench/parse.py {' '.join(args.argv)}", ""]
    lines += table(results)
    lines += ["", "## Memory and targets", ""]
    lines += verdicts(results)
    return "\n".join(lines) + "\n"


# =============================================================================================
# main


def parse_formats(names: Sequence[str]) -> list[tuple[str, str, str]]:
    chosen = []
    for name in names:
        if name in FORMATS:
            chosen.append((name, *FORMATS[name]))
            continue
        grammar, _, case = name.partition("/")
        if not case or not sample_path(grammar, case).exists():
            known = [*FORMATS, *(f"{p.parent.name}/{p.stem}" for p in sorted(SAMPLES.glob("*/*.log")))]
            raise SystemExit(f"unknown format {name!r}; use one of: {', '.join(known)}")
        chosen.append((name, grammar, case))
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return run_child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines of each generated log (default 2000000)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS),
                        help=f"grammar names ({', '.join(FORMATS)}) or grammar/case for another sample")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="generated logs and results.md")
    parser.add_argument("--cpu", type=int, default=1, help="pin every measurement to this CPU (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI measurements")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the table, cProfile the kamlog measurement (all fields) of each format")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    args = parser.parse_args(argv)
    args.argv = argv
    args.out = args.out.resolve()
    formats = parse_formats(args.formats)
    pin = pin_prefix(None if args.no_pin else args.cpu)
    info = machine()
    for k, v in info.items():
        print(f"{k}: {v}", file=sys.stderr)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]

    if args.profile:
        for fmt, grammar, case in formats:
            big = generate(sample_path(grammar, case), args.out / f"{fmt.replace('/', '-')}.log", args.lines)
            run = run_once([*pin, *me, "profile", str(big.path), "--grammar", grammar, "--fields", "all",
                            "--top", str(args.top)], True)
            print(f"## {fmt}: {big.lines:,} lines, {run.output.get('events'):,} events, "
                  f"loop {run.output.get('loop_s'):.2f} s under cProfile\n")
            print(run.output.get("profile", ""))
        return 0

    results: list[Measurement] = []
    for fmt, grammar, case in formats:
        print(f"{fmt} ({grammar}, sample {case}.log):", file=sys.stderr)
        results += bench_format(fmt, grammar, case, args, pin)
    text = report(results, info, args, pin)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    print(text)
    print(f"(also written to {args.out / 'results.md'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
