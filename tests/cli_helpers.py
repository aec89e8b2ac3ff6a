"""Run the real `kamlog` command the way a user does, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kamlog(*args: str, timeout: float = 60, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TZ": "UTC"}
    env.update(kw.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "kamlog", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw,
    )
