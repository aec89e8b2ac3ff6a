"""Field decoders: raw captured text -> typed values, per grammar type, built once per source."""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any, Callable, Final

import orjson

from ..correlate.clock import Clock, epoch_us, rfc3339
from ..events import FIELDS, Accessor
from ..levels import NUMBER_OF_NAME
from .callid import CallIdFinder, real_call_id
from .grammar import CompiledPattern

Converter = Callable[[Any], Any]

_RSYSLOG_ESCAPE: Final = re.compile(r"#([0-3][0-7]{2})")


def to_int(text: Any) -> int | None:
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def unbracket(text: str | None) -> str | None:
    if text and text[0] == "<" and text[-1] == ">":
        return text[1:-1]
    return text


def rsyslog_unescape(text: str | None) -> str | None:
    """rsyslog writes control characters as `#` and three octal digits (#012 is a newline)."""
    if not text or "#" not in text:
        return text
    return _RSYSLOG_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def json_unescape(text: str | None) -> str | None:
    """A JSON string's escapes (\\n, \\", \\uXXXX), for fields the lenient pattern captured."""
    if not text or "\\" not in text:
        return text
    try:
        value = orjson.loads(b'"' + text.encode("utf-8", "surrogateescape") + b'"')
        return value if isinstance(value, str) else text
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        return text


def converter(kind: str, clock: Clock) -> Converter:
    """The function that decodes one raw value of grammar type `kind`."""
    if kind == "str":
        return _identity
    if kind == "int":
        return to_int
    if kind == "rfc3164":
        return clock.rfc3164
    if kind == "rfc3339":
        return rfc3339
    if kind == "epoch_us":
        return epoch_us
    if kind == "unbracket":
        return unbracket
    if kind == "rsyslog":
        return rsyslog_unescape
    if kind == "jstr":
        return json_unescape
    raise ValueError(f"unknown field type {kind!r}")


def _none(values: Any) -> None:
    return None


def _identity(value: Any) -> Any:
    return value


class RegexDecoder:
    """Decodes the `re.Match` of one compiled pattern, lazily, field by field.

    Events keep the Match itself: `match.groups()` would build every field's string up front,
    and most consumers read two or three fields.
    """

    def __init__(
        self,
        path: str,
        grammar: str,
        pattern: CompiledPattern,
        clock: Clock,
        callids: CallIdFinder,
        file_id: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.grammar = grammar
        self.file_id = file_id
        self.pattern = pattern
        accessors: dict[str, Accessor] = {}
        for field, (index, kind) in pattern.fields.items():
            if field in ("json", "body"):
                continue
            accessors[field] = _accessor(index, converter(kind, clock), field in _NONE_IF_EMPTY)
        self._derive(accessors, callids)
        self.accessors = accessors
        self.decode_all = compile_decode_all(pattern, clock, callids)

    @staticmethod
    def _derive(accessors: dict[str, Accessor], callids: CallIdFinder) -> None:
        level = accessors.get("level")
        if level is not None and "level_no" not in accessors:
            accessors["level_no"] = lambda v: NUMBER_OF_NAME.get(level(v))
        prefix = accessors.get("log_prefix")
        message: Accessor = accessors.get("message", _none)
        captured = accessors.get("call_id")

        def call_id(v: tuple[Any, ...]) -> str | None:
            found = real_call_id(captured(v)) if captured is not None else None
            if found is None:
                found = callids.find(prefix(v) if prefix else None, message(v))
            return found

        accessors["call_id"] = call_id
        if prefix is not None:
            for name in ("cseq_num", "cseq_method", "msg_type"):
                if name not in accessors:
                    accessors[name] = _from_prefix(prefix, callids, name)


# Kamailio writes these empty when it has none (the JSON engine's "function": "" for xlog).
_NONE_IF_EMPTY: Final = frozenset({"function", "log_prefix", "module", "src_file"})


def _accessor(index: int, convert: Converter, none_if_empty: bool = False) -> Accessor:
    if none_if_empty:
        return lambda v: convert(v[index]) or None
    if convert is _identity:
        return itemgetter(index)
    return lambda v: convert(v[index])


def _from_prefix(prefix: Accessor, callids: CallIdFinder, name: str) -> Accessor:
    return lambda v: getattr(callids.prefix_fields(prefix(v)), name)


def compile_decode_all(pattern: CompiledPattern, clock: Clock, callids: CallIdFinder) -> Callable[[Any], tuple[Any, ...]]:
    """One generated function that decodes every field of a match, in FIELDS order.

    Sinks that write whole records (JSON, text, stores) need every field; decoding them one
    property at a time costs a call each and decodes the message and prefix several times
    over. Like namedtuple, this writes the function's source once per pattern and compiles it.
    Its results equal the per-field accessors (tests/parsing check both on every sample).
    """
    fields = {name: spec for name, spec in pattern.fields.items() if name in FIELDS}
    namespace: dict[str, Any] = {
        "_levels": NUMBER_OF_NAME,
        "_real": real_call_id,
        "_prefix_fields": callids.prefix_fields,
        "_in_text": callids.in_text,
    }
    body = ["def decode_all(m):", "    g = m.groups()"]
    for name, (group, kind) in fields.items():
        expr = f"g[{group - 1}]"
        if kind != "str":
            namespace[f"_{kind}"] = converter(kind, clock)
            expr = f"_{kind}({expr})"
        if name in _NONE_IF_EMPTY:
            expr = f"({expr} or None)"
        body.append(f"    {name} = {expr}")
    if "level_no" not in fields:
        body.append("    level_no = _levels.get(level)" if "level" in fields else "    level_no = None")
    prefix = "log_prefix" in fields
    if prefix:
        body.append("    pf = _prefix_fields(log_prefix)")
    for name in ("cseq_num", "cseq_method", "msg_type"):
        if name not in fields:
            body.append(f"    {name} = pf.{name}" if prefix else f"    {name} = None")
    found = ["_real(call_id)"] if "call_id" in fields else []
    if prefix:
        found.append("pf.call_id")
    found.append("_in_text(message)" if "message" in fields else "None")
    body.append(f"    call_id = {' or '.join(found)}")
    values = ", ".join(name if name in fields or name in {"level_no", "call_id", "cseq_num", "cseq_method", "msg_type"} else "None" for name in FIELDS)
    body.append(f"    return ({values})")
    exec("\n".join(body), namespace)
    return namespace["decode_all"]  # type: ignore[no-any-return]
