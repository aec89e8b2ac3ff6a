"""Where Kamailio's log is on this machine when the user names none."""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass
from typing import Final

# Dedicated files first (kamlog's rsyslog drop-in, Debian's packaging), then shared syslog files.
CANDIDATES: Final = ("/var/log/kamailio.log", "/var/log/kamailio/*.log", "/var/log/syslog", "/var/log/messages")


@dataclass(frozen=True, slots=True)
class Found:
    paths: tuple[str, ...]  # empty: use the journal
    description: str


def find_log(root: str = "/") -> Found | None:
    for candidate in CANDIDATES:
        pattern = os.path.join(root, candidate.lstrip("/"))
        matches = sorted(glob.glob(pattern))
        readable = [m for m in matches if os.path.isfile(m) and os.access(m, os.R_OK)]
        if readable:
            shared = candidate in ("/var/log/syslog", "/var/log/messages")
            what = "Kamailio's lines only" if shared else "Kamailio's log"
            return Found(tuple(readable) if "*" not in candidate else (pattern,), f"{', '.join(readable)} ({what})")
    if shutil.which("journalctl") and os.path.isdir("/run/systemd/journal"):
        return Found((), "the systemd journal (journalctl)")
    return None
