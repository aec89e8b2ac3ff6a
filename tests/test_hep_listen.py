"""`kamlog messages --hep-listen`: a real Kamailio's siptrace feeds kamlog without tcpdump."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.capture.test_hep_kamailio import TEMPLATE, options
from tests.cli_helpers import ROOT
from tests.corpus.runners import LOOPBACK, Kamailio, free_port

pytestmark = pytest.mark.realworld


def read_lines(process: subprocess.Popen[bytes], count: int, timeout: float = 15) -> list[dict]:
    """The first `count` JSON lines kamlog prints (bounded wait)."""
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    lines: list[dict] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [json.loads(line) for line in done]
        else:
            time.sleep(0.05)
    return lines


class TestHepListen:
    @pytest.mark.parametrize("hep_version", [3, 2])
    def test_kamailios_siptrace_messages_and_hlog_records_are_printed_as_they_arrive(
            self, tmp_path: Path, hep_version: int):
        port = free_port()
        template = tmp_path / "kamailio-hep.cfg"
        template.write_text(TEMPLATE.read_text().replace("@@HEP_PORT@@", str(port))
                            .replace("@@HEP_VERSION@@", str(hep_version)))
        kamlog = subprocess.Popen(
            [sys.executable, "-m", "kamlog", "messages", "--format", "json", "--hep-listen", f"127.0.0.1:{port}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert kamlog.stderr is not None
            assert kamlog.stderr.readline().decode() == f"kamlog: listening for HEP on udp 127.0.0.1:{port}\n"
            with Kamailio(tmp_path, debug=2, config_template=template) as kamailio:
                call_id = f"hep-listen-v{hep_version}@kamlog.test"
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((LOOPBACK, 0))
                    udp.settimeout(10)
                    udp.sendto(options(call_id, udp.getsockname()[1], "UDP", kamailio.sip_port), (LOOPBACK, kamailio.sip_port))
                    assert udp.recv(65535).startswith(b"SIP/2.0 200 Alive")
                docs = read_lines(kamlog, 3)
        finally:
            kamlog.send_signal(signal.SIGTERM)
            _, stderr = kamlog.communicate(timeout=10)
        assert len(docs) == 3, (docs, stderr)
        by_kind = {(d["event.dataset"], d.get("sip.method") or d.get("sip.code")): d for d in docs}
        request = by_kind[("kamailio.sip", "OPTIONS")]
        reply = by_kind[("kamailio.sip", 200)]
        log = by_kind[("kamailio.log", None)]
        assert request["sip.call_id"] == reply["sip.call_id"] == log["sip.call_id"] == call_id
        assert request["destination.port"] == kamailio.sip_port and request["kamlog.capture.file"] == f"hep://127.0.0.1:{port}"
        assert log["message"].startswith("kamlog hlog: OPTIONS from 127.0.0.1:")
        assert kamlog.returncode == 130  # stopped by SIGTERM, as tail is
        assert stderr.decode().splitlines() == [
            "kamlog: received 3 HEP datagrams: 2 SIP, 1 log records, 0 of other types, 0 not HEP or damaged",
        ]
