"""tshark as the reference: the SIP/SDP fields it dissects, per frame number."""

from __future__ import annotations

import subprocess
from pathlib import Path

FIELDS = (
    "sip.Call-ID", "sip.Method", "sip.Status-Code", "sip.CSeq.seq", "sip.CSeq.method", "sip.from.tag",
    "sip.to.tag", "sip.Via.branch", "sip.Via.sent-by.address", "sip.Via.transport", "sip.r-uri",
    "sip.contact.uri", "sip.from.addr", "sip.to.addr", "sip.User-Agent", "sip.Server", "sip.Content-Type",
    "sdp.connection_info.address", "sdp.media.media", "sdp.media.port", "sdp.media.proto",
)  # fmt: skip


def tshark_sip(pcap: Path | str) -> dict[int, dict[str, list[str]]]:
    """{frame number: {field: every occurrence, in order}} for each frame tshark calls SIP."""
    argv = ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
            "-E", "aggregator=\x1f", "-e", "frame.number"]  # fmt: skip
    for field in FIELDS:
        argv += ["-e", field]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    frames: dict[int, dict[str, list[str]]] = {}
    for line in out.splitlines():
        number, *values = line.split("\t")
        frames[int(number)] = {field: value.split("\x1f") if value else [] for field, value in zip(FIELDS, values)}
    return frames
