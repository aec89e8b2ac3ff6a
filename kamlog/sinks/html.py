"""`kamlog correlate --format html`: one self-contained report file (being written)."""

from __future__ import annotations

from typing import IO

from ..correlate.attribution import Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..errors import UsageError


class HtmlWriter:
    def __init__(self, stream: IO[bytes], min_level: int | None = None) -> None:
        raise UsageError("--format html is not available yet")

    def call(self, timeline: CallTimeline) -> None: ...
    def unattributed(self, placed: Placed, skew: Skew) -> None: ...
    def close(self, summary: Summary) -> None: ...
