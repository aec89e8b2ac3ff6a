"""Records whose fields come from JSON (Kamailio's JSON engine, journald) or from a `body`
matched again: built eagerly, field by field, into a LogEvent.

These formats are decoded with orjson and a key map ([json.keys] of the grammar), so the lazy
one-regex path of logline.py does not apply; what is derived (level number, Call-ID, CSeq)
is derived the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Final

import orjson

from ..correlate.clock import Clock
from ..events import FIELDS, LogEvent
from ..levels import NUMBER_OF_NAME
from .callid import CallIdFinder, real_call_id
from .decode import NONE_IF_EMPTY, converter
from .grammar import Grammar

BodyAttempt = Callable[[str, int], "LogEvent | None"]

_EVENT_FIELDS: Final = frozenset(FIELDS) - {"error"}


class StructuredRecords:
    def __init__(
        self,
        grammar: Grammar,
        path: str,
        file_id: tuple[int, int] | None,
        clock: Clock,
        callids: CallIdFinder,
    ) -> None:
        self.grammar = grammar
        self.path = path
        self.file_id = file_id
        self.clock = clock
        self.callids = callids
        self.body_attempts: list[BodyAttempt] = []

    def build(self, values: dict[str, Any], offset: int) -> LogEvent | None:
        """The event of a pattern's decoded captures, its `json` and `body` expanded; None when
        the JSON is not a record of this grammar (the parser then tries the next pattern)."""
        document = values.pop("json", None)
        if document is not None:
            decoded = self.json_fields(document)
            if decoded is None:
                return None
            values.update((k, v) for k, v in decoded.items() if v is not None or k not in values)
        body = values.pop("body", None)
        if body is not None:
            for attempt in self.body_attempts:
                event = attempt(body, offset)
                if event is not None:
                    for name, value in event.as_dict().items():
                        if name in _EVENT_FIELDS and value is not None:
                            values.setdefault(name, value)
                    break
            else:
                values.setdefault("message", body)
        return self.complete(values, offset)

    def json_fields(self, document: str) -> dict[str, Any] | None:
        """Event fields from a JSON object through the grammar's key map."""
        try:
            obj = orjson.loads(document)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        flat: dict[str, Any] = {}
        flatten(obj, "", flat, self.grammar.json_key_prefixes)
        required = self.grammar.json_required
        if required and not any(key in flat for key in required):
            return None
        out: dict[str, Any] = {}
        for key, value in flat.items():
            target = self.grammar.json_keys.get(key)
            if target is None:
                continue
            name, kind = target
            if name == "body" and isinstance(value, list):
                # journald writes a MESSAGE that holds control characters as a byte array
                value = bytes(v & 0xFF for v in value if isinstance(v, int)).decode("utf-8", "replace")
            if value is not None and kind != "str":
                value = converter(kind, self.clock)(value)
            elif value is not None and not isinstance(value, str):
                value = str(value)
            out[name] = value
        if not {"level", "message", "body"} & out.keys():
            return None
        return out

    def complete(self, values: dict[str, Any], offset: int) -> LogEvent:
        """Normalise and derive as the regex decoders do, then build the event."""
        message = values.get("message")
        if isinstance(message, str) and message.endswith("\n"):
            message = message[:-1]  # the JSON engine keeps the message's own final newline
        values["message"] = message if message is not None else ""
        for name in NONE_IF_EMPTY:
            if values.get(name) == "":
                values[name] = None
        level = values.get("level")
        if level is not None and values.get("level_no") is None:
            values["level_no"] = NUMBER_OF_NAME.get(level)
        prefix = self.callids.prefix_fields(values.get("log_prefix"))
        values["call_id"] = (
            real_call_id(values.get("call_id")) or prefix.call_id or self.callids.in_text(values["message"])
        )
        for name in ("cseq_num", "cseq_method", "msg_type"):
            if values.get(name) is None:
                values[name] = getattr(prefix, name)
        return LogEvent.create(
            path=self.path, offset=offset, grammar=self.grammar.name, file_id=self.file_id, **values
        )


def flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any], strip: tuple[str, ...]) -> None:
    """Nested objects as dotted keys (`{"file": {"name": x}}` -> `file.name`), without the
    key prefixes `strip` names (`kamailio.level` -> `level`)."""
    for key, value in obj.items():
        for p in strip:
            if key.startswith(p):
                key = key[len(p) :]
                break
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flatten(value, f"{dotted}.", out, strip)
        else:
            out[dotted] = value
