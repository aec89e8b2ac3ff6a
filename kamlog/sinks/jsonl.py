"""JSON lines: one ECS object per event (orjson: the hot path of `--format json`)."""

from __future__ import annotations

from typing import BinaryIO

import orjson

from ..events import LogEvent
from .ecs import log_event


class JsonLinesSink:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __call__(self, event: LogEvent) -> None:
        self.stream.write(orjson.dumps(log_event(event)) + b"\n")

    def flush(self) -> None:
        self.stream.flush()
