"""The debug example: `python -m tests.corpus.examples` writes examples/debug/ (kamailio.log and
capture.pcap): a real debug=3 run through rsyslog (RFC 3339) of a REGISTER and a busy call,
where most lines carry no Call-ID and `kamlog correlate` places them by process."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.corpus.generate import EXAMPLES, SCENARIOS, Form, run_form

DEBUG_EXAMPLE = EXAMPLES / "debug"


def write_debug_example(target: Path = DEBUG_EXAMPLE) -> dict[str, Any]:
    form = Form("example-debug", "syslog", rsyslog_files={"kamailio.log": "RSYSLOG_FileFormat"},
                description="debug=3, syslog -> rsyslog RSYSLOG_FileFormat")
    scenarios = [s for s in SCENARIOS if s.name in ("register-busy", "call-busy")]
    with tempfile.TemporaryDirectory(prefix="kamlog-example-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        entry = run_form(form, out, Path(tmp) / "work", debug=3, scenarios=scenarios, pcap_name="capture.pcap")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "kamailio.log", target / "kamailio.log")
        shutil.copyfile(out / "capture.pcap", target / "capture.pcap")
    return entry


if __name__ == "__main__":
    write_debug_example()
    print(f"examples: {DEBUG_EXAMPLE}/kamailio.log, capture.pcap")
    sys.exit(0)
