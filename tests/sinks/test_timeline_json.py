"""`kamlog correlate --format json`'s log lines: the fast writer gives byte for byte what the
readable document gives, on every corpus log form and on hostile text."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from kamlog.correlate.attribution import CALL_ID, Attributor, Placed
from kamlog.correlate.inputs import LogReader
from kamlog.events import LogEvent
from kamlog.parsing.options import ParseOptions
from kamlog.sip import rfc3339
from kamlog.sinks.ecs import log_event
from kamlog.sinks.timeline import log_json

FORMS = ["syslog-rfc3339.log", "syslog-traditional.log", "stderr.log", "json.log", "journal.json", "tcp.log",
         "syslog-json-U-rfc3339.log"]


def log_document(placed: Placed, at_ns: int | None) -> dict[str, Any]:
    """A log record: its ECS document with `@timestamp` in the capture's clock (the skew taken
    off), the time it was written with as `kamlog.original_timestamp`."""
    doc = log_event(placed.event)
    original = doc.pop("@timestamp", None)
    doc = {"@timestamp": rfc3339(at_ns, 6) if at_ns is not None else original, **doc}
    doc["sip.call_id"] = placed.call_id
    doc["kamlog.original_timestamp"] = original
    doc["kamlog.attribution"] = placed.how
    if placed.key is not None and placed.how != CALL_ID:
        doc.setdefault("sip.cseq.code", placed.key[1])
        doc.setdefault("sip.cseq.method", placed.key[2])
    return doc


def reference(placed: Placed, at_ns: int | None, call: str | None) -> str:
    doc = log_document(placed, at_ns)
    doc["kamlog.call"] = call
    return orjson.dumps(doc).decode()


class TestLogJson:
    @pytest.mark.parametrize("name", FORMS)
    def test_every_record_of_a_real_log_is_written_as_its_document(self, corpus: Path, name: str) -> None:
        attributor = Attributor()
        placed = [p for e in LogReader([str(corpus / name)], ParseOptions()) for p in attributor.feed(e)]
        placed += attributor.finish()
        assert len(placed) > 1000
        for p in placed:
            at = None if p.ts_ns is None else p.ts_ns - 1234
            assert log_json(p, at, p.call_id) == reference(p, at, p.call_id)

    @pytest.mark.parametrize("text", ['a "quoted" \\ back', "tab\there\x01\x7f", "ünïcödé ✓", ""])
    def test_hostile_text_is_escaped_as_orjson_escapes_it(self, text: str) -> None:
        event = LogEvent.create(message=text, module=text, host=text, call_id=text or None, pid=1,
                                timestamp=datetime(2026, 11, 28, tzinfo=timezone.utc), path=f"/var/log/{text}.log")
        for how, key in (("call_id", None), ("process", (1, 2, text)), ("unattributed", None)):
            p = Placed(event, text if how != "unattributed" else None, how, 0, 1, key)
            assert log_json(p, None, text) == reference(p, None, text)
