"""Kibana's query language (KQL) parsed into a small AST, checked against kamlog's fields.

The grammar is @kbn/es-query's: `field : value`, `field : *`, `field < value` (`<=`, `>`, `>=`),
value lists `field : (a or not b)`, `not` / `and` / `or` (binding in that order, any case),
parentheses, and bare values, which search DEFAULT_FIELD. Where kamlog differs from Kibana:
- `and`, `or` and `not` are keywords only as whole words (`cannot find` is one value), and a
  trailing one is an error rather than part of the value (`a and` ends too early);
- in an unquoted value `\\x` is always the character x (Kibana reads `\\n` as a newline there);
- field names are unquoted and must be kamlog's (fields.py); wildcard fields and nested
  `field : { ... }` queries are refused.

Values are checked and normalised to their field's type here, once, so the Elasticsearch and
SQLite compilers get the same thing: numbers as canonical integers, IP addresses and CIDR blocks
in ipaddress' form, dates (`now-15m` too) as one absolute instant in RFC 3339 with nanoseconds."""

from __future__ import annotations

import difflib
import ipaddress
import re
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, TypeAlias

import pyparsing as pp
from dateutil.parser import isoparse
from dateutil.relativedelta import relativedelta

from ..errors import UsageError
from .fields import DEFAULT_FIELD, FIELDS


class KqlError(UsageError):
    """A query that is not KQL, or that asks kamlog's fields what they cannot answer.

    `position` is 1-based (a column, for a one-line query); `expected` says what the parser
    wanted there, for a syntax error; `text` is the whole query."""

    def __init__(self, text: str, position: int, problem: str, expected: str | None = None) -> None:
        super().__init__(f"position {position}: {problem}")
        self.text = text
        self.position = position
        self.expected = expected


# --- the AST ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """A value without wildcards, its escapes resolved; `quoted` if it was written in quotes
    (on a text field that makes it a phrase rather than words)."""

    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Wildcard:
    """An unquoted value with `*` in it: the literal pieces between the stars (`a*b` is
    ("a", "b"), `rout*` is ("rout", ""))."""

    parts: tuple[str, ...]


Value: TypeAlias = Literal | Wildcard
RangeOp: TypeAlias = typing.Literal["<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class MatchAll:
    """Every document: the empty query, or a bare `*`."""


@dataclass(frozen=True, slots=True)
class Exists:
    """`field : *`: the field has a value that is not null."""

    field: str


@dataclass(frozen=True, slots=True)
class Is:
    """`field : value`, the value already checked against (and normalised to) the field's type."""

    field: str
    value: Value


@dataclass(frozen=True, slots=True)
class Range:
    """`field < value` and the like."""

    field: str
    op: RangeOp
    value: Literal


@dataclass(frozen=True, slots=True)
class Not:
    query: Node


@dataclass(frozen=True, slots=True)
class And:
    queries: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    queries: tuple[Node, ...]


Node: TypeAlias = MatchAll | Exists | Is | Range | Not | And | Or


# --- values by field type ----------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_NS: Final = 2**63 - 1  # date_nanos ends in 2262
_FRACTION = re.compile(r"(?<=\d)[.,](\d+)")
_DATE_MATH = re.compile(r"now((?:[+-]\d+[yMwdhHms])*)")
_DATE_STEP = re.compile(r"([+-]\d+)([yMwdhHms])")
_STEP_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "H": "hours", "m": "minutes", "s": "seconds"}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ONE_WORD = re.compile(r"\w+")  # a word of `message`: letters, digits and `_`, as both stores cut them


def date_ns(text: str) -> int:
    """An ISO 8601 / RFC 3339 date or date-time as nanoseconds since the epoch; without a zone
    it is UTC (as Elasticsearch reads it). Fractions keep all nine digits, which datetime
    cannot. Raises ValueError."""
    fraction = _FRACTION.search(text)
    extra_ns = 0
    if fraction is not None:
        extra_ns = int((fraction.group(1) + "00000000")[:9])
        text = text[: fraction.start()] + text[fraction.end() :]
    when = isoparse(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000 + extra_ns


def rfc3339_ns(ns: int) -> str:
    """`2026-11-28T17:00:00.123456789Z`, the form an instant takes in the AST and in the DSL."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


class _Clock:
    """The current time of one parse, read once, so every `now` in a query is the same instant."""

    def __init__(self, now: datetime | None) -> None:
        self._now = now

    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(timezone.utc)
        elif self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=timezone.utc)
        return self._now


_CLOCK: ContextVar[_Clock] = ContextVar("kql_clock")


class _Invalid(Exception):
    """Raised by parse actions; parse() turns it into a KqlError with the query text."""

    def __init__(self, loc: int, problem: str) -> None:
        super().__init__(problem)
        self.loc = loc
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Val:
    """A value as parsed, with where it was, before a field gives it a type."""

    value: Value
    loc: int

    @property
    def shown(self) -> str:
        value = self.value
        return value.text if isinstance(value, Literal) else "*".join(value.parts)


def _number(field: str, val: _Val) -> str:
    text = val.shown
    if isinstance(val.value, Literal) and _INTEGER.fullmatch(text) and -(2**63) <= int(text) < 2**63:
        return str(int(text))
    raise _Invalid(val.loc, f"{field} holds numbers; {text!r} is not one")


def _ip(field: str, val: _Val, *, block: bool) -> str:
    text = val.shown
    if isinstance(val.value, Wildcard):
        raise _Invalid(
            val.loc, f"{field} holds IP addresses; use a CIDR block like 10.0.0.0/8 rather than a wildcard ({text!r})"
        )
    if "%" not in text:  # ipaddress takes IPv6 zones (fe80::1%eth0); Elasticsearch does not
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            pass
        if "/" in text:
            try:
                network = str(ipaddress.ip_network(text, strict=False))
            except ValueError:
                pass
            else:
                if block:
                    return network
                raise _Invalid(val.loc, f"a range on {field} compares with one address, not a CIDR block ({text!r})")
    raise _Invalid(val.loc, f"{field} holds IP addresses; {text!r} is neither an address nor a CIDR block")


def _date(field: str, val: _Val) -> str:
    text = val.shown
    problem = f"{field} holds dates; {text!r} is not an ISO 8601 date or time, nor date math like now-15m"
    if isinstance(val.value, Wildcard):
        raise _Invalid(val.loc, problem)
    math = _DATE_MATH.fullmatch(text)
    if math is not None:
        when = _CLOCK.get().now()
        for amount, unit in _DATE_STEP.findall(math.group(1)):
            step = int(amount)
            if unit == "y":
                when += relativedelta(years=step)
            elif unit == "M":
                when += relativedelta(months=step)
            else:
                when += timedelta(**{_STEP_UNITS[unit]: step})
        ns = (when - _EPOCH) // timedelta(microseconds=1) * 1000
    elif text.startswith("now"):
        if "/" in text or "||" in text:
            raise _Invalid(val.loc, f"date rounding and anchored date math ({text!r}) are not supported")
        raise _Invalid(val.loc, problem)
    else:
        try:
            ns = date_ns(text)
        except (ValueError, OverflowError):
            raise _Invalid(val.loc, problem) from None
    if not 0 <= ns <= _MAX_NS:
        raise _Invalid(val.loc, f"{text!r} is outside the dates {field} can hold (1970 to 2262)")
    return rfc3339_ns(ns)


def _is(field: str, val: _Val) -> Node:
    """`field : value` once the field is known: checked, normalised, `*` alone is Exists."""
    kind = FIELDS[field]
    value = val.value
    if isinstance(value, Wildcard) and value.parts == ("", ""):
        return Exists(field)
    if kind == "keyword":
        return Is(field, value)
    if kind == "text":
        if isinstance(value, Wildcard) and not (
            len(value.parts) == 2 and not value.parts[1] and _ONE_WORD.fullmatch(value.parts[0])
        ):
            problem = f"{field} is searched by words; a wildcard may only end a single word, like rout*"
            raise _Invalid(val.loc, f"{problem} ({val.shown!r})")
        return Is(field, value)
    if kind == "long":
        text = _number(field, val)
    elif kind == "ip":
        text = _ip(field, val, block=True)
    else:
        text = _date(field, val)
    quoted = isinstance(value, Literal) and value.quoted
    return Is(field, Literal(text, quoted))


def _range(field: str, op: RangeOp, val: _Val, field_loc: int) -> Range:
    kind = FIELDS[field]
    value = val.value
    if kind == "text":
        raise _Invalid(field_loc, f"{field} is searched by words, which have no order: it takes no {op}")
    if isinstance(value, Wildcard):
        problem = f"a range compares with one value, not a wildcard ({val.shown!r})"
        raise _Invalid(val.loc, f"{problem}; write \\* for a star")
    if kind == "long":
        text = _number(field, val)
    elif kind == "ip":
        text = _ip(field, val, block=False)
    elif kind == "date_nanos":
        text = _date(field, val)
    else:
        text = value.text
    return Range(field, op, Literal(text, value.quoted))


# --- the grammar -------------------------------------------------------------------------------

# One character of an unquoted value or field: an escape, or anything not special or space.
_CH: Final = r'(?:\\[\s\S]|[^ \t\r\n\\():<>"{}])'
_KEYWORD: Final = rf"(?i:and|or|not)(?!{_CH})"
_WORD: Final = rf"(?!{_KEYWORD}){_CH}+"

Partial: TypeAlias = Callable[[str], Node]
"""A value list (`(a or not b)`) waiting for its field, as in Kibana's grammar."""


def _unquoted(s: str, loc: int, toks: pp.ParseResults) -> _Val:
    raw: str = toks[0]
    parts: list[str] = []
    chars: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            chars.append(raw[i + 1])
            i += 2
            continue
        if char == "*":
            parts.append("".join(chars))
            chars = []
        else:
            chars.append(char)
        i += 1
    parts.append("".join(chars))
    return _Val(Literal(parts[0]) if len(parts) == 1 else Wildcard(tuple(parts)), loc)


_QUOTED_ESCAPES: Final = {"t": "\t", "r": "\r", "n": "\n", '"': '"', "\\": "\\"}


def _quoted(s: str, loc: int, toks: pp.ParseResults) -> _Val:
    raw: str = toks[0]
    if len(raw) < 2 or not raw.endswith('"') or re.fullmatch(r'"(?:\\[\s\S]|[^"\\])*"', raw) is None:
        raise pp.ParseFatalException(s, len(s), "Expected a closing '\"'")
    text = re.sub(r"\\([\s\S])", lambda m: _QUOTED_ESCAPES.get(m.group(1), m.group()), raw[1:-1])
    return _Val(Literal(text, quoted=True), loc)


def _field_name(s: str, loc: int, toks: pp.ParseResults) -> str:
    name: str = toks[0]
    if "*" in name:
        raise _Invalid(loc, f"wildcards in field names ({name}) are not supported; name one field")
    if name not in FIELDS:
        close = difflib.get_close_matches(name, FIELDS, n=3, cutoff=0.7)
        names = ", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else "".join(close)
        hint = f"; did you mean {names}?" if close else ""
        raise _Invalid(loc, f"unknown field {name!r}{hint}")
    return name


def _nested(s: str, loc: int, toks: pp.ParseResults) -> None:
    raise _Invalid(loc, "nested field queries (field : { ... }) are not supported")


def _field_expression(s: str, loc: int, toks: pp.ParseResults) -> Node:
    field: str = toks[0]
    if len(toks) == 2:
        partial: Partial = toks[1]
        return partial(field)
    return _range(field, toks[1], toks[2], loc)


def _bare(s: str, loc: int, toks: pp.ParseResults) -> Node:
    val: _Val = toks[0]
    if isinstance(val.value, Wildcard) and val.value.parts == ("", ""):
        return MatchAll()
    return _is(DEFAULT_FIELD, val)


def _leaf(s: str, loc: int, toks: pp.ParseResults) -> Partial:
    val: _Val = toks[0]
    return lambda field: _is(field, val)


def _combine(kind: type[And] | type[Or]) -> Callable[[pp.ParseResults], Node]:
    def action(toks: pp.ParseResults) -> Node:
        nodes: list[Node] = list(toks)
        return nodes[0] if len(nodes) == 1 else kind(tuple(nodes))

    return action


def _combine_partials(kind: type[And] | type[Or]) -> Callable[[pp.ParseResults], Partial]:
    def action(toks: pp.ParseResults) -> Partial:
        partials: list[Partial] = list(toks)
        if len(partials) == 1:
            return partials[0]
        return lambda field: kind(tuple(partial(field) for partial in partials))

    return action


def _not_partial(toks: pp.ParseResults) -> Partial:
    inner: Partial = toks[0]
    return lambda field: Not(inner(field))


def _grammar() -> pp.ParserElement:
    """The whole grammar, built once; its names are what an error says was expected."""

    def keyword(word: str) -> pp.ParserElement:
        return pp.Regex(rf"(?i:{word})(?!{_CH})").suppress().set_name(f"'{word}'")

    and_, or_, not_ = keyword("and"), keyword("or"), keyword("not")
    lpar = pp.Suppress("(").set_name("'('")
    rpar = pp.Suppress(")").set_name("'and', 'or' or ')'")
    unquoted = pp.Regex(rf"{_WORD}(?:[ \t\r\n]+{_WORD})*").set_parse_action(_unquoted)
    quoted = pp.Regex(r'"(?:\\[\s\S]|[^"\\])*"?').set_parse_action(_quoted)
    value = (quoted | unquoted).set_name("a value")

    or_list = pp.Forward()
    list_item = (
        (lpar - or_list - rpar)
        | value.copy().add_parse_action(_leaf)
        | pp.Literal("{").set_parse_action(_nested)
    ).set_name("a value")
    not_list = pp.Forward()
    not_list <<= ((not_ - not_list).set_parse_action(_not_partial) | list_item).set_name("a value")
    and_list = (not_list + pp.ZeroOrMore(and_ - not_list)).set_parse_action(_combine_partials(And))
    or_list <<= (and_list + pp.ZeroOrMore(or_ - and_list)).set_parse_action(_combine_partials(Or))

    field = pp.Regex(rf"[^ \t\r\n\\():<>\"{{}}]+(?=[ \t\r\n]*[:<>])").set_name("a field name")
    field.set_parse_action(_field_name)
    operator = pp.Regex(r"<=|>=|<|>")
    field_expression = (
        field + ((pp.Suppress(":") - list_item) | (operator - value))
    ).set_parse_action(_field_expression)

    or_query = pp.Forward()
    sub_query = (lpar - or_query - rpar) | field_expression | value.copy().set_parse_action(_bare)
    not_query = pp.Forward()
    not_query <<= ((not_ - not_query).set_parse_action(lambda t: Not(t[0])) | sub_query).set_name("a query")
    and_query = (not_query + pp.ZeroOrMore(and_ - not_query)).set_parse_action(_combine(And))
    or_query <<= (and_query + pp.ZeroOrMore(or_ - and_query)).set_parse_action(_combine(Or))
    query = or_query - pp.StringEnd().set_name("'and', 'or' or the end of the query")
    return query.parse_with_tabs()  # a tab in a value stays a tab, and positions count it as one


_QUERY: Final = _grammar()


def parse(text: str, *, now: datetime | None = None) -> Node:
    """The AST of a KQL query; the empty query matches everything. `now` is the instant date
    math (`now-15m`) counts from (default: the current time, read once). Raises KqlError."""
    if not text.strip():
        return MatchAll()
    token = _CLOCK.set(_Clock(now))
    try:
        node: Node = _QUERY.parse_string(text, parse_all=True)[0]
    except pp.ParseBaseException as exc:
        expected = exc.msg.removeprefix("Expected ")
        hint = " (quote a value that holds ':', like \"::1\")" if text[exc.loc : exc.loc + 1] == ":" else ""
        raise KqlError(text, exc.loc + 1, f"expected {expected}{hint}", expected) from None
    except _Invalid as exc:
        raise KqlError(text, exc.loc + 1, exc.problem) from None
    except RecursionError:  # pyparsing recurses per level: about 60 nested parentheses or nots
        raise KqlError(text, 1, "the query nests parentheses or 'not' too deeply") from None
    finally:
        _CLOCK.reset(token)
    return node


# --- back to KQL -------------------------------------------------------------------------------

_SPECIAL = re.compile(r'[\\():<>"*{}]')
_EDGE_SPACE = re.compile(r"^[ \t\r\n]+|[ \t\r\n]+$")
_BARE_KEYWORD = re.compile(rf"(?:^|(?<=[ \t\r\n])){_KEYWORD}")


def _kql_value(value: Value) -> str:
    if isinstance(value, Literal) and (value.quoted or not value.text):
        return '"' + value.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    parts = (value.text,) if isinstance(value, Literal) else value.parts
    text = "*".join(_SPECIAL.sub(r"\\\g<0>", part) for part in parts)
    text = _EDGE_SPACE.sub(lambda m: "".join("\\" + c for c in m.group()), text)
    return _BARE_KEYWORD.sub(r"\\\g<0>", text)


def _kql_group(node: Node, grouped: tuple[type, ...]) -> str:
    text = to_kql(node)
    return f"({text})" if isinstance(node, grouped) else text


def to_kql(node: Node) -> str:
    """KQL that parses back to `node` (for any AST parse() returns)."""
    match node:
        case MatchAll():
            return "*"
        case Exists(field):
            return f"{field} : *"
        case Is(field, value):
            return f"{field} : {_kql_value(value)}"
        case Range(field, op, value):
            return f"{field} {op} {_kql_value(value)}"
        case Not(query):
            return "not " + _kql_group(query, (And, Or))
        case And(queries):
            return " and ".join(_kql_group(query, (And, Or)) for query in queries)
        case Or(queries):
            return " or ".join(_kql_group(query, (Or,)) for query in queries)
    typing.assert_never(node)
