"""Make the test corpus: real Kamailio logs in every form it writes, and pcaps of the same traffic.

    python -m tests.corpus.generate --out DIR [--samples] [--keep]

Runs Kamailio (tests/corpus/kamailio.cfg) once per log form, drives the same SIPp scenarios
through it each time (REGISTER, OPTIONS, a completed call, a busy call, an unknown user, a
cancelled call, a call whose Call-ID holds a double quote), captures the SIP traffic with tcpdump,
and writes the logs, captures and ``manifest.json`` into DIR. ``--samples`` also refreshes the
committed samples: ``examples/kamailio.log`` + ``examples/capture.pcap`` (a small debug=2 run)
and the grammar goldens' raw inputs ``tests/grammars/<grammar>/<case>.log`` (excerpts of DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.corpus.runners import (
    LOOPBACK, Journald, Kamailio, MountNamespace, Rsyslog, RsyslogOutput, RunnerError, Sipp, SippResult,
    Tcpdump, Tshark, free_ports,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GRAMMAR_SAMPLES = REPO / "tests" / "grammars"

#: The level names Kamailio 5.6 writes (xlog's L_CRIT and L_CRIT2 both print CRITICAL; level -2,
#: the core's L_CRIT, has an empty name).
LEVEL_NAMES = ("ALERT", "BUG", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")


# ---------------------------------------------------------------------------------------------
# scenarios


@dataclass(frozen=True)
class Scenario:
    """One SIPp caller run (and the SIPp callee it needs), with the Call-ID it uses."""

    name: str
    uac: str
    call_id: str
    expected_status: int
    description: str
    keys: dict[str, str] = field(default_factory=dict)
    uas: str | None = None     # scenario of the callee, started before the caller
    callee: str | None = None  # the user whose registered contact the callee listens on


CALLEES = ("answer", "busy", "ring")

SCENARIOS: tuple[Scenario, ...] = (
    *(Scenario(f"register-{user}", "register.xml", f"register-{user}-1@kamlog.test", 200,
               f"REGISTER of user {user!r} (contact: the SIPp UAS that plays {user!r}), 200 OK",
               keys={"user": user}, callee=user) for user in CALLEES),
    Scenario("options", "options.xml", "options-1@kamlog.test", 200,
             "OPTIONS keepalive to the proxy, answered 200 statelessly"),
    Scenario("call-completed", "uac-call.xml", "call-completed-1@kamlog.test", 200,
             "INVITE/100/180/200/ACK/BYE/200 through the proxy to a SIPp UAS",
             keys={"callee": "answer"}, uas="uas-answer.xml", callee="answer"),
    Scenario("call-busy", "uac-busy.xml", "call-busy-1@kamlog.test", 486,
             "INVITE answered 486 Busy Here by the SIPp UAS, ACK", keys={"callee": "busy"},
             uas="uas-busy.xml", callee="busy"),
    Scenario("call-unknown", "uac-unknown.xml", "call-unknown-1@kamlog.test", 404,
             "INVITE to a user nobody registered: 404 Not Found from Kamailio, ACK",
             keys={"callee": "nobody"}),
    Scenario("call-cancelled", "uac-cancel.xml", "call-cancelled-1@kamlog.test", 487,
             "INVITE, 180 from the SIPp UAS, CANCEL by the caller, 200 (CANCEL), 487, ACK",
             keys={"callee": "ring"}, uas="uas-ring.xml", callee="ring"),
    Scenario("call-quoted-callid", "uac-call.xml", 'call-"quoted"-1@kamlog.test', 200,
             "a completed call whose Call-ID holds double quotes (the JSON log engine writes it unescaped)",
             keys={"callee": "answer"}, uas="uas-answer.xml", callee="answer"),
)

#: The scenarios of the small example (examples/): no hostile Call-ID there.
EXAMPLE_SCENARIOS = tuple(s for s in SCENARIOS if s.name != "call-quoted-callid")


def run_scenarios(workdir: Path, kamailio_port: int, scenarios: Sequence[Scenario],
                  callee_ports: dict[str, int], transport: str = "u1") -> list[dict[str, Any]]:
    """Run each scenario against the proxy, one after the other; return what each did."""
    results = []
    for sc in scenarios:
        keys: dict[str, object] = dict(sc.keys)
        if sc.uac == "register.xml":
            assert sc.callee is not None
            keys["contact_port"] = callee_ports[sc.callee]
        uas_result: SippResult | None = None
        started = dt.datetime.now(dt.timezone.utc)
        with contextlib.ExitStack() as stack:
            uas = None
            if sc.uas is not None:
                assert sc.callee is not None
                uas = stack.enter_context(Sipp(workdir, sc.uas, local_port=callee_ports[sc.callee],
                                               call_id="%u-%p@%s", name=f"{sc.name}-uas", timeout=20))
            uac = Sipp(workdir, sc.uac, remote=(LOOPBACK, kamailio_port), call_id=sc.call_id,
                       keys=keys, name=f"{sc.name}-uac", timeout=20, transport=transport)
            uac_result = uac.run()
            if uas is not None:
                uas_result = uas.finish()
        results.append({
            "name": sc.name,
            "description": sc.description,
            "call_id": sc.call_id,
            "expected_final_status": sc.expected_status,
            "started": started.isoformat(timespec="microseconds"),
            "uac": {"scenario": sc.uac, "command": uac_result.command_line,
                    "returncode": uac_result.returncode, "ok": uac_result.ok},
            "uas": None if uas_result is None else {
                "scenario": sc.uas, "command": uas_result.command_line,
                "returncode": uas_result.returncode, "ok": uas_result.ok},
            "ok": uac_result.ok and (uas_result is None or uas_result.ok),
        })
        if not results[-1]["ok"]:
            failed = uac_result if not uac_result.ok else uas_result
            assert failed is not None
            raise RunnerError(f"scenario {sc.name} failed (SIPp exit {failed.returncode}): "
                              f"{failed.command_line}\n{failed.output[-6000:]}")
    return results


# ---------------------------------------------------------------------------------------------
# log forms


@dataclass(frozen=True)
class Form:
    """One way of running Kamailio, and the corpus files that run produces."""

    name: str
    target: str                      # "stderr", "syslog" (our rsyslog) or "journal" (our journald)
    color: bool = False
    engine: str | None = None
    rsyslog_files: dict[str, str] = field(default_factory=dict)  # corpus file -> rsyslog template
    stderr_file: str | None = None
    description: str = ""
    defines: tuple[str, ...] = ()    # kamailio -A: WITH_TCP, WITH_SIPDUMP (see kamailio.cfg)
    transport: str = "u1"            # the SIPp callers' -t (the callees always answer on UDP)
    more_captures: bool = False      # also tcpdump -i any (SLL2) and tshark (pcapng)


FORMS: tuple[Form, ...] = (
    Form("stderr", "stderr", stderr_file="stderr.log", description="-E: log to stderr"),
    Form("stderr-color", "stderr", color=True, stderr_file="stderr-color.log",
         description="-E -e: log to stderr in terminal colours"),
    Form("json", "stderr", engine="json", stderr_file="json.log", description="-E --log-engine=json"),
    Form("json-c", "stderr", engine="json:c", stderr_file="json-c.log",
         description="-E --log-engine=json:c"),
    Form("json-a", "stderr", engine="json:a", stderr_file="json-a.log",
         description="-E --log-engine=json:a"),
    Form("json-ac", "stderr", engine="json:ac", stderr_file="json-ac.log",
         description="-E --log-engine=json:ac"),
    Form("json-U", "stderr", engine="json:U", stderr_file="json-U.log",
         description="-E --log-engine=json:U (CEE)"),
    Form("syslog", "syslog", rsyslog_files={
        "syslog-traditional.log": "RSYSLOG_TraditionalFileFormat",
        "syslog-rfc3339.log": "RSYSLOG_FileFormat",
        "syslog-rfc5424.log": "RSYSLOG_SyslogProtocol23Format",
    }, description="syslog(3) -> rsyslog imuxsock -> files, three templates; the traffic also "
       "captured by tcpdump -i any (capture-any.pcap), tshark (capture.pcapng) and Kamailio's "
       "sipdump module (sipdump-*.pcap)", defines=("WITH_SIPDUMP",), more_captures=True),
    Form("tcp", "stderr", stderr_file="tcp.log", defines=("WITH_TCP",), transport="t1",
         description="-E, the callers on TCP (sipp -t t1), the callees on UDP; capture-tcp.pcap"),
    Form("syslog-json", "syslog", engine="json:c", rsyslog_files={
        "syslog-json-rfc3339.log": "RSYSLOG_FileFormat",
        "syslog-json-traditional.log": "RSYSLOG_TraditionalFileFormat",
    }, description="--log-engine=json:c in syslog mode -> rsyslog"),
    Form("syslog-json-U", "syslog", engine="json:U", rsyslog_files={
        "syslog-json-U-rfc3339.log": "RSYSLOG_FileFormat",
    }, description="--log-engine=json:U (CEE, @cee: bodies) in syslog mode -> rsyslog"),
    Form("journal", "journal", description="syslog(3) -> a private systemd-journald's /dev/log; "
         "journal.json and journal.export by journalctl -D"),
)

JOURNAL_FILES = {"journal.json": ("-o", "json"), "journal.export": ("-o", "export")}
JOURNAL_MATCH = "SYSLOG_IDENTIFIER=kamailio"


def kamailio_version() -> str:
    done = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def run_form(form: Form, out_dir: Path, workdir: Path, *, debug: int = 3,
             scenarios: Sequence[Scenario] = SCENARIOS, pcap_name: str | None = None) -> dict[str, Any]:
    """Run Kamailio once in ``form`` with all ``scenarios``; write its files into ``out_dir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    kport, *cports = free_ports(1 + len(CALLEES))
    callee_ports = dict(zip(CALLEES, cports))
    pcap = out_dir / (pcap_name or f"capture-{form.name}.pcap")
    entry: dict[str, Any] = {"description": form.description, "target": form.target,
                             "log_engine": form.engine, "color": form.color, "debug": debug,
                             "ports": {"kamailio": kport, **{f"uas_{k}": v for k, v in callee_ports.items()}},
                             "start": _now()}
    with contextlib.ExitStack() as stack:
        rsyslog: Rsyslog | None = None
        journald: Journald | None = None
        namespace: MountNamespace | None = None
        if form.target == "syslog":
            rsyslog = stack.enter_context(Rsyslog(workdir, [
                RsyslogOutput(workdir / "rsyslog-out" / name, template)
                for name, template in form.rsyslog_files.items()]))
            namespace = stack.enter_context(MountNamespace(workdir, rsyslog.socket_path))
            entry["rsyslog"] = {"command": rsyslog.process.command_line if rsyslog.process else None,
                                "config": rsyslog.render_config(),
                                "files": dict(form.rsyslog_files)}
        elif form.target == "journal":
            journald = stack.enter_context(Journald(workdir))
            namespace = journald.namespace
            entry["journald"] = {"command": journald.process.command_line if journald.process else None,
                                 "journalctl": {name: ["journalctl", "-D", "<journal dir>", *args, JOURNAL_MATCH]
                                                for name, args in JOURNAL_FILES.items()}}
        protocols = "udp or tcp" if form.transport.startswith("t") else "udp"
        tcpdump = stack.enter_context(Tcpdump(workdir, pcap, [kport], protocols=protocols))
        more: list[Tcpdump] = []
        if form.more_captures:
            more = [stack.enter_context(Tcpdump(workdir, out_dir / "capture-any.pcap", [kport], interface="any",
                                                name="tcpdump-any", protocols=protocols)),
                    stack.enter_context(Tshark(workdir, out_dir / "capture.pcapng", [kport],
                                               name="tshark", protocols=protocols))]
        kamailio = Kamailio(workdir, log_target="stderr" if form.target == "stderr" else "syslog",
                            color=form.color, log_engine=form.engine, namespace=namespace,
                            sip_port=kport, debug=debug, defines=form.defines)
        stack.enter_context(kamailio)
        entry["command"] = kamailio.process.command_line if kamailio.process else None
        entry["kamailio_argv"] = kamailio.argv
        entry["tcpdump"] = tcpdump.process.command_line if tcpdump.process else None
        t0 = time.monotonic()
        entry["scenarios"] = run_scenarios(workdir, kport, scenarios, callee_ports, form.transport)
        # At least two rtimer ticks (lines outside any SIP message) in every form.
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
        kamailio.stop()
        tcpdump.stop()
        entry["packets_captured"] = tcpdump.captured
        for capture in more:
            capture.stop()
            entry[f"packets_captured_{capture.name}"] = capture.captured
        if rsyslog is not None:
            rsyslog.drain()
        if journald is not None:
            time.sleep(0.3)
            for name, args in JOURNAL_FILES.items():
                (out_dir / name).write_bytes(journald.journalctl(*args, JOURNAL_MATCH))
    entry["end"] = _now()
    files = []
    if form.stderr_file:
        shutil.copyfile(kamailio.stderr_path, out_dir / form.stderr_file)
        files.append(form.stderr_file)
    for name in form.rsyslog_files:
        shutil.copyfile(workdir / "rsyslog-out" / name, out_dir / name)
        files.append(name)
    if form.target == "journal":
        files += list(JOURNAL_FILES)
    files += [c.pcap.name for c in more]
    for number, dump in enumerate(sorted(kamailio.sipdump_dir.glob("*.pcap")), 1):
        shutil.copyfile(dump, out_dir / f"sipdump-{number}.pcap")
        files.append(f"sipdump-{number}.pcap")
    entry["files"] = files
    entry["pcap"] = pcap.name
    return entry


def generate(out_dir: Path | str, *, keep_workdir: bool = False,
             forms: Sequence[Form] = FORMS) -> dict[str, Any]:
    """Run every form, write the corpus into ``out_dir`` and return the manifest (also written there)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="kamlog-corpus-"))
    started = time.monotonic()
    manifest: dict[str, Any] = {
        "kamailio_version": kamailio_version(),
        "generator": "python -m tests.corpus.generate",
        "start": _now(),
        "level_names": list(LEVEL_NAMES),
        "scenarios": [{"name": s.name, "call_id": s.call_id, "expected_final_status": s.expected_status,
                       "description": s.description} for s in SCENARIOS],
        "forms": {},
    }
    try:
        for form in forms:
            manifest["forms"][form.name] = run_form(form, out, workroot / form.name)
        if "syslog" in manifest["forms"]:
            shutil.copyfile(out / manifest["forms"]["syslog"]["pcap"], out / "capture.pcap")
            manifest["capture.pcap"] = "a copy of " + manifest["forms"]["syslog"]["pcap"]
    finally:
        if not keep_workdir:
            shutil.rmtree(workroot, ignore_errors=True)
    manifest["end"] = _now()
    manifest["seconds"] = round(time.monotonic() - started, 1)
    manifest["files"] = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------------
# committed samples


_STDERR_START = re.compile(rb"^(?:\x1b\[[0-9;]*m)*\s*\d+\(\d+\) ")


def records(data: bytes, form: str) -> list[bytes]:
    """Split a log into records: one per line, except stderr where bare lines continue a record."""
    lines = data.splitlines(keepends=True)
    if not form.startswith("stderr"):
        return lines
    out: list[bytes] = []
    for line in lines:
        if out and not _STDERR_START.match(line):
            out[-1] += line
        else:
            out.append(line)
    return out


def journal_view(line: bytes) -> bytes:
    """A journalctl JSON line plus its MESSAGE as bytes (journalctl writes a MESSAGE with control
    characters, e.g. a multi-line one, as an array of byte values)."""
    message = json.loads(line).get("MESSAGE")
    if isinstance(message, list):
        return line + b"\n" + bytes(message)
    return line


def excerpt(data: bytes, form: str, *, call_id: str, limit: int = 60) -> bytes:
    """A small excerpt of real records showing every trap: see tests/grammars/README.md."""
    recs = records(data, form)
    raw, escaped = call_id.encode(), json.dumps(call_id)[1:-1].encode()

    def has_cid(r: bytes) -> bool:
        return raw in r or escaped in r

    views = [journal_view(r) for r in recs] if form == "journal" else recs
    chosen: list[int] = []

    def pick(pred: Callable[[bytes], bool], count: int = 1) -> None:
        n = 0
        for i, r in enumerate(views):
            if pred(r) and i not in chosen:
                chosen.append(i)
                n += 1
                if n >= count:
                    return

    pick(lambda r: True, 2)                                           # start-up, core
    pick(lambda r: b"kamailio:" in r and b"kamailio[" not in r)       # before openlog(): no pid
    pick(lambda r: b"kamlog corpus proxy starting" in r)              # script line, no SIP message
    pick(lambda r: b"first SIP worker ready" in r)
    pick(lambda r: b"created rtimer" in r)                            # module line, no SIP message
    pick(lambda r: b"rtimer tick" in r)
    pick(lambda r: b"to body (" in r)                                 # core, multi-line in stderr
    pick(lambda r: b"registered sip:answer" in r)
    pick(lambda r: b"keepalive OPTIONS" in r)
    pick(lambda r: has_cid(r) and b"request INVITE" in r)
    pick(lambda r: has_cid(r) and b"maxfwd" in r)                     # module line with prefix
    pick(lambda r: has_cid(r) and (b"<core>" in r or b'"core"' in r) and b"receive_msg" not in r)
    pick(lambda r: has_cid(r) and b"level probe" in r, 10)             # every level
    pick(lambda r: has_cid(r) and b"SIP message dump" in r)            # multi-line $mb dump
    pick(lambda r: has_cid(r) and b"routing INVITE" in r)
    pick(lambda r: has_cid(r) and (b"t_relay" in r or b"tm [" in r or b'"tm"' in r), 2)
    pick(lambda r: has_cid(r) and b"reply 200 OK" in r)
    pick(lambda r: b"user nobody not found" in r)
    pick(lambda r: b"call failed with 486" in r)
    pick(lambda r: b"call cancelled" in r)
    pick(lambda r: b"Thank you for flying" in r)
    pick(lambda r: b"signal 15 received" in r)
    picked = sorted(chosen)
    while sum(recs[i].count(b"\n") for i in picked) > limit and len(picked) > 1:
        # over the limit: drop a record from the middle, never the dump or a level probe
        droppable = [i for i in picked if b"SIP message dump" not in views[i] and b"level probe" not in views[i]]
        if not droppable:
            break
        picked.remove(droppable[len(droppable) // 2])
    return b"".join(recs[i] for i in picked)


#: corpus file -> (grammar directory, case file)
GOLDEN_INPUTS: dict[str, tuple[str, str]] = {
    "stderr.log": ("kamailio-stderr", "plain.log"),
    "stderr-color.log": ("kamailio-stderr", "color.log"),
    "syslog-traditional.log": ("kamailio-syslog", "traditional.log"),
    "syslog-json-traditional.log": ("kamailio-syslog", "json.log"),
    "syslog-rfc3339.log": ("kamailio-syslog-rfc3339", "text.log"),
    "syslog-json-rfc3339.log": ("kamailio-syslog-rfc3339", "json-c.log"),
    "syslog-json-U-rfc3339.log": ("kamailio-syslog-rfc3339", "json-cee.log"),
    "syslog-rfc5424.log": ("kamailio-syslog-rfc5424", "text.log"),
    "json.log": ("kamailio-json", "plain.log"),
    "json-c.log": ("kamailio-json", "c.log"),
    "json-a.log": ("kamailio-json", "a.log"),
    "json-ac.log": ("kamailio-json", "ac.log"),
    "json-U.log": ("kamailio-json", "cee.log"),
    "journal.json": ("journald-json", "journal.log"),
}


def write_golden_inputs(corpus: Path, target: Path = GRAMMAR_SAMPLES) -> list[Path]:
    """Cut the grammar tests' raw inputs out of a generated corpus."""
    call_id = next(s.call_id for s in SCENARIOS if s.name == "call-quoted-callid")
    written = []
    for name, (grammar, case) in GOLDEN_INPUTS.items():
        src = corpus / name
        if not src.exists():
            continue
        form = "stderr" if name.startswith("stderr") else "journal" if name.startswith("journal") else "line"
        dest = target / grammar / case
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(excerpt(src.read_bytes(), form, call_id=call_id))
        written.append(dest)
    return written


def write_examples(target: Path = EXAMPLES) -> dict[str, Any]:
    """A small real sample: a debug=2 syslog run through rsyslog (RFC 3339) and its pcap."""
    form = Form("example", "syslog", rsyslog_files={"kamailio.log": "RSYSLOG_FileFormat"},
                description="debug=2, syslog -> rsyslog RSYSLOG_FileFormat")
    with tempfile.TemporaryDirectory(prefix="kamlog-example-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        entry = run_form(form, out, Path(tmp) / "work", debug=2, scenarios=EXAMPLE_SCENARIOS,
                         pcap_name="capture.pcap")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "kamailio.log", target / "kamailio.log")
        shutil.copyfile(out / "capture.pcap", target / "capture.pcap")
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the corpus into")
    parser.add_argument("--samples", action="store_true",
                        help="also refresh examples/ and tests/grammars/*/*.log from this run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    manifest = generate(args.out, keep_workdir=args.keep)
    print(f"corpus: {args.out} ({len(manifest['files'])} files, {manifest['seconds']}s)")
    if args.samples:
        for path in write_golden_inputs(args.out):
            print(f"golden input: {path.relative_to(REPO)}")
        write_examples()
        print(f"examples: {EXAMPLES.relative_to(REPO)}/kamailio.log, capture.pcap")
    print(f"done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
