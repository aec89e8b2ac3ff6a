"""JSON lines: one ECS object per event (orjson: the hot path of `--format json`)."""

from __future__ import annotations

from typing import BinaryIO

import orjson

from ..events import LogEvent
from .ecs import last_value_cache, log_event, timestamp_text


class JsonLinesSink:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._time_text = last_value_cache(timestamp_text)

    def __call__(self, event: LogEvent) -> None:
        self.stream.write(orjson.dumps(log_event(event, self._time_text), option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        self.stream.flush()
