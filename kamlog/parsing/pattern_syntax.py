"""The pattern language of grammars/: regular expressions with grok-like `%{NAME:field:type}` references.

A pattern is regex text interleaved with references:
  `%{NAME}`             the definition NAME, not captured
  `%{NAME:field}`       the definition NAME, captured as the event field `field`
  `%{NAME:field:type}`  the same, decoded with `type` (int, rfc3164, rfc3339, ...)
`\\%` writes a literal percent sign. pyparsing parses this structure once, when a grammar is
compiled; it never runs per log line.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp

from ..errors import GrammarError


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    field: str | None
    type: str | None
    column: int  # 1-based column of the `%{` in the pattern text, for error messages


Element = str | Reference

_NAME = pp.Regex(r"[A-Za-z_][A-Za-z0-9_]*").set_name("definition name")
_FIELD = pp.Regex(r"[a-z_][a-z0-9_]*").set_name("field name")
_TYPE = pp.Regex(r"[a-z_][a-z0-9_]*").set_name("type name")
_REFERENCE = (
    pp.Suppress("%{")
    - _NAME("name")
    + pp.Opt(pp.Suppress(":") + _FIELD("field") + pp.Opt(pp.Suppress(":") + _TYPE("type")))
    + pp.Suppress("}").set_name("'}'")
).set_name("%{reference}")
_LITERAL = pp.Regex(r"(?:\\.|[^%\\]|%(?!\{))+", flags=0).set_name("regular expression text")
_PATTERN = (pp.ZeroOrMore(pp.Group(_REFERENCE, aslist=False) | _LITERAL) + pp.StringEnd()).set_name(
    "pattern"
)
_REFERENCE.set_parse_action(
    lambda s, loc, t: Reference(t["name"], t.get("field"), t.get("type"), pp.col(loc, s))
)
_PATTERN.parse_with_tabs()
_PATTERN.leave_whitespace()
_REFERENCE.leave_whitespace()


def parse_pattern(text: str, where: str) -> list[Element]:
    """Split a pattern into regex text and references; `where` names it in errors."""
    try:
        parsed = _PATTERN.parse_string(text, parse_all=True)
    except (pp.ParseException, pp.ParseSyntaxException) as exc:
        raise GrammarError(
            f"{where}: invalid pattern at column {exc.column}: {exc.msg}\n"
            f"    {text}\n    {' ' * (exc.column - 1)}^"
        ) from None
    elements: list[Element] = []
    for item in parsed:
        if isinstance(item, pp.ParseResults):
            item = item[0]
        elements.append(item)
    return elements
