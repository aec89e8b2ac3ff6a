"""Captures of real SIPp traffic made for the SIP parser tests (built-in uac/uas, compact forms)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.corpus.runners import LOOPBACK, Sipp, Tcpdump, free_port

HERE = Path(__file__).resolve().parent


def _sipp_capture(workdir: Path, uac: Path, uas: Path, calls: int) -> Path:
    """Run `calls` calls from the UAC scenario to the UAS scenario on loopback, captured."""
    pcap = workdir / "capture.pcap"
    uas_port, uac_port = free_port(), free_port()
    with Tcpdump(workdir, pcap, [uas_port]):
        with Sipp(workdir, uas, local_port=uas_port, calls=calls, name="uas"):
            result = Sipp(workdir, uac, local_port=uac_port, remote=(LOOPBACK, uas_port), calls=calls, name="uac").run()
            assert result.ok, result.output
    return pcap


def _builtin(workdir: Path, name: str) -> Path:
    """SIPp's built-in scenario `name` (what `-sn name` runs), dumped to a file."""
    path = workdir / f"{name}.xml"
    path.write_bytes(subprocess.run(["sipp", "-sd", name], capture_output=True, timeout=30).stdout)
    return path


@pytest.fixture(scope="session")
def sipp_builtin_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SIPp's built-in `uac` calling its built-in `uas`, 5 calls."""
    workdir = tmp_path_factory.mktemp("sipp-builtin")
    return _sipp_capture(workdir, _builtin(workdir, "uac"), _builtin(workdir, "uas"), 5)


@pytest.fixture(scope="session")
def sipp_compact_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uac-compact.xml (compact header forms, multipart SDP, Vias in several forms) calling SIPp's `uas`."""
    workdir = tmp_path_factory.mktemp("sipp-compact")
    return _sipp_capture(workdir, HERE / "uac-compact.xml", _builtin(workdir, "uas"), 3)
