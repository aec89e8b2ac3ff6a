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
        # Each wanted key as a path into the object: {"file": {"name": ...}} for "file.name".
        self._paths = [
            (tuple(key.split(".")), name, None if kind == "str" else converter(kind, clock))
            for key, (name, kind) in grammar.json_keys.items()
        ]
        self._prefixes = grammar.json_key_prefixes
        self._required = grammar.json_required

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
        if not isinstance(obj, dict) or not obj:
            return None
        first = next(iter(obj))
        for prefix in self._prefixes:  # `json:a` writes every key as kamailio.<key>
            if first.startswith(prefix):
                cut = len(prefix)
                obj = {k[cut:] if k.startswith(prefix) else k: v for k, v in obj.items()}
                break
        if self._required and not any(key in obj for key in self._required):
            return None
        out: dict[str, Any] = {}
        for path, name, convert in self._paths:
            value = obj.get(path[0])
            for part in path[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None or isinstance(value, dict):
                continue
            if name == "body" and isinstance(value, list):
                # journald writes a MESSAGE that holds control characters as a byte array
                value = bytes(v & 0xFF for v in value if isinstance(v, int)).decode("utf-8", "replace")
            if convert is not None:
                value = convert(value)
            elif not isinstance(value, str):
                value = str(value)
            out[name] = value
        if not ("level" in out or "message" in out or "body" in out):
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
        return LogEvent.from_values(
            tuple([values.get(name) for name in FIELDS]), self.path, self.grammar.name, self.file_id, offset
        )
