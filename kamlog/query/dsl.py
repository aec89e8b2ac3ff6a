"""A KQL AST as Elasticsearch query DSL, the queries Kibana builds for kamlog's field types."""

from __future__ import annotations

import typing
from typing import Any, Final

from .fields import FIELDS
from .kql import And, Exists, Is, Literal, MatchAll, Node, Not, Or, Range, Wildcard

_RANGE_KEYS: Final = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def _checked(field: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}")
    return field


def _scalar(field: str, text: str) -> str | int:
    """A normalised value as Elasticsearch takes it: numbers as numbers, the rest as text."""
    return int(text) if FIELDS[field] == "long" else text


def _wildcard_pattern(parts: tuple[str, ...]) -> str:
    """Elasticsearch's wildcard syntax: `?` is a wildcard there but not in KQL, so it is escaped
    with the literal stars and backslashes."""
    escaped = (part.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?") for part in parts)
    return "*".join(escaped)


def _is(field: str, value: Literal | Wildcard) -> dict[str, Any]:
    kind = FIELDS[_checked(field)]
    if kind == "text":
        if isinstance(value, Wildcard):
            # parse() allows only `word*` here; prefix queries are not analysed, so lower-case it
            return {"prefix": {field: value.parts[0].lower()}}
        if value.quoted:
            return {"match_phrase": {field: value.text}}
        return {"match": {field: {"query": value.text, "operator": "or"}}}
    if isinstance(value, Wildcard):
        return {"wildcard": {field: {"value": _wildcard_pattern(value.parts)}}}
    if kind == "date_nanos":
        # as Kibana does for dates: the instant is a range of one
        return {"range": {field: {"gte": value.text, "lte": value.text}}}
    return {"term": {field: _scalar(field, value.text)}}


def to_dsl(node: Node) -> dict[str, Any]:
    """The query DSL of `node` (a filter context: no scores are needed)."""
    match node:
        case MatchAll():
            return {"match_all": {}}
        case Exists(field):
            return {"exists": {"field": _checked(field)}}
        case Is(field, value):
            return _is(field, value)
        case Range(field, op, value):
            return {"range": {_checked(field): {_RANGE_KEYS[op]: _scalar(field, value.text)}}}
        case Not(query):
            return {"bool": {"must_not": [to_dsl(query)]}}
        case And(queries):
            return {"bool": {"filter": [to_dsl(query) for query in queries]}}
        case Or(queries):
            return {"bool": {"should": [to_dsl(query) for query in queries], "minimum_should_match": 1}}
    typing.assert_never(node)
