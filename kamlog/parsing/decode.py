"""Field decoders: raw captured text -> typed values, per grammar type, built once per source."""

from __future__ import annotations

import re
from typing import Any, Callable, Final

import orjson

from ..correlate.clock import Clock, epoch_us, rfc3339
from ..events import FIELDS
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
    # A SIP message in a DEBUG line holds dozens of CRLFs: plain replaces first, the regex
    # (a Python call per escape) only for what is left.
    text = text.replace("#015#012", "\r\n").replace("#012", "\n").replace("#011", "\t")
    if "#" not in text:
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


def _identity(value: Any) -> Any:
    return value


class RegexDecoder:
    """Decodes the `re.Match` of one compiled pattern, lazily, field by field.

    Events keep the Match itself: `match.groups()` would build every field's string up front,
    and most consumers read two or three fields. Like namedtuple, the decoder writes the source
    of its functions once per pattern and compiles it: one small function per field (an
    attribute named after the field, what LogEvent's properties call) and `decode_all`, which
    decodes every field at once, each part once, for sinks that write whole records.
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
        namespace: dict[str, Any] = {
            "_levels": NUMBER_OF_NAME,
            "_real": real_call_id,
            "_prefix_fields": callids.prefix_fields,
            "_in_text": callids.in_text,
        }
        captured: dict[str, str] = {}
        for name, (group, kind) in pattern.fields.items():
            if name not in FIELDS:
                continue  # json and body are expanded by the parser, not decoded here
            expr = f"m[{group}]"
            if kind != "str":
                namespace[f"_{kind}"] = converter(kind, clock)
                expr = f"_{kind}({expr})"
            captured[name] = f"({expr} or None)" if name in NONE_IF_EMPTY else expr
        steps = _derivations(captured)
        for name in FIELDS:
            setattr(self, name, eval(f"lambda m: {_inline(steps, name)}", namespace))
        # One C call builds every group's string; index 0 stands for the whole match, so
        # that m[n] still means group n.
        source = ["def decode_all(m):", "    m = (None, *m.groups())", *(f"    {line}" for line in _as_statements(steps))]
        source.append(f"    return ({', '.join(FIELDS)},)")
        exec("\n".join(source), namespace)
        self.decode_all: Callable[[Any], tuple[Any, ...]] = namespace["decode_all"]
        self.start: Callable[[re.Match[str]], int] = re.Match.start


# Kamailio writes these empty when it has none (the JSON engine's "function": "" for xlog).
NONE_IF_EMPTY: Final = frozenset({"function", "log_prefix", "module", "src_file"})
_FROM_PREFIX: Final = ("cseq_num", "cseq_method", "msg_type")


def _derivations(captured: dict[str, str]) -> dict[str, str]:
    """Each field (and the helper `pf`) as an expression of `m` and, in braces, of the fields
    before it: what the pattern captured, then what follows from it (the level's number, the
    log_prefix's Call-ID and CSeq, a Call-ID in the message's text)."""
    steps = {name: captured.get(name, "None") for name in FIELDS if name not in ("level_no", "call_id", *_FROM_PREFIX)}
    steps["level_no"] = captured.get("level_no") or ("_levels.get({level})" if "level" in captured else "None")
    steps["pf"] = "_prefix_fields({log_prefix})"
    for name in _FROM_PREFIX:
        steps[name] = captured.get(name) or ("{pf}." + name if "log_prefix" in captured else "None")
    found = [f"_real({captured['call_id']})"] if "call_id" in captured else []
    if "log_prefix" in captured:
        found.append("{pf}.call_id")
    if "message" in captured:
        found.append("_in_text({message})")
    steps["call_id"] = " or ".join(found) or "None"
    return steps


_REFERENCES: Final = ("level", "log_prefix", "message", "pf")


def _as_statements(steps: dict[str, str]) -> list[str]:
    """`name = expression` for each step, the references being the variables assigned before."""
    return [f"{name} = {expr.format(**{r: r for r in _REFERENCES})}" for name, expr in steps.items()]


def _inline(steps: dict[str, str], name: str) -> str:
    """The expression of one field alone, what it refers to written out in place."""
    return steps[name].format(**{r: f"({_inline(steps, r)})" for r in _REFERENCES if "{" + r + "}" in steps[name]})
