"""A KQL AST as a WHERE clause over the SQLite store (kamlog/store/schema.py) that finds the
events Elasticsearch would.

Fields are read from the JSON document with json_each, which yields one row for a scalar, one per
item for a list and none for a missing path, so a list matches when any item does; JSON null is
skipped, so null is "absent", as in Elasticsearch. `@timestamp` and `kamlog.call` are the `ts` and
`call` columns, `message` is the FTS5 index. Every predicate is 0 or 1, never NULL, so that NOT
finds what Elasticsearch's must_not finds (a document without the field matches `not f : v`).
Field names are checked against FIELDS before they are written into the SQL; values are always
parameters."""

from __future__ import annotations

import functools
import ipaddress
import re
import sqlite3
import typing
from typing import Final

from .fields import FIELDS
from .kql import And, Exists, Is, Literal, MatchAll, Node, Not, Or, Range, Wildcard, date_ns

_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.@-]+")
_NON_WORD: Final = re.compile(r"\W+")  # `_` is part of a word, as in both stores
_MESSAGE: Final = "rowid IN (SELECT rowid FROM messages WHERE messages MATCH ?)"
# json_extract, not json_each, so that the events_call_id index serves Call-ID lookups
_CALL_ID: Final = "json_extract(doc, '$.\"sip.call_id\"') IS ?"


def register_functions(conn: sqlite3.Connection) -> None:
    """The functions to_sql's clauses call: `kamlog_ip(text)`, an address as the 16 bytes
    Elasticsearch's `ip` type orders and compares (IPv4 as IPv4-mapped IPv6), NULL if it is not
    one; `kamlog_ns(text)`, an RFC 3339 date as nanoseconds since the epoch, NULL if it is not one."""
    conn.create_function("kamlog_ip", 1, _ip_key, deterministic=True)
    conn.create_function("kamlog_ns", 1, _stored_ns, deterministic=True)


def _ip_bytes(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    number = int(address) | 0xFFFF << 32 if address.version == 4 else int(address)
    return number.to_bytes(16, "big")


@functools.lru_cache(maxsize=4096)
def _ip_text_key(text: str) -> bytes | None:
    try:
        return _ip_bytes(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ip_key(value: object) -> bytes | None:
    return _ip_text_key(value) if isinstance(value, str) else None


def _ip_bounds(text: str) -> tuple[bytes, bytes]:
    """The first and last address of an address or CIDR block, as kamlog_ip() gives them."""
    if "/" in text:
        network = ipaddress.ip_network(text, strict=False)
        return _ip_bytes(network.network_address), _ip_bytes(network.broadcast_address)
    key = _ip_bytes(ipaddress.ip_address(text))
    return key, key


def _stored_ns(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return date_ns(value)
    except (ValueError, OverflowError):
        return None


def _checked(field: str) -> str:
    if field not in FIELDS or not _SAFE_NAME.fullmatch(field):
        raise ValueError(f"unknown field {field!r}")
    return field


def _each(field: str, condition: str | None = None) -> str:
    """Some non-null item of `field` meets `condition` (`type` and `value` are json_each's)."""
    where = "type != 'null'" if condition is None else f"type != 'null' AND {condition}"
    return f"EXISTS (SELECT 1 FROM json_each(doc, '$.\"{_checked(field)}\"') WHERE {where})"


def _glob(parts: tuple[str, ...]) -> str:
    """A KQL wildcard as a GLOB pattern: GLOB's own specials in the literal parts are bracketed."""
    return "*".join(re.sub(r"[\[*?]", r"[\g<0>]", part) for part in parts)


def _words(text: str) -> list[str]:
    return [word for word in _NON_WORD.split(text.lower()) if word]


def _message(value: Literal | Wildcard, params: list[object]) -> str:
    if isinstance(value, Wildcard):
        prefix = value.parts[0].lower()
        if len(value.parts) != 2 or value.parts[1] or _words(prefix) != [prefix]:
            raise ValueError(f"message takes a wildcard only at the end of one word, not {value.parts!r}")
        query = f'"{prefix}"*'
    else:
        words = _words(value.text)
        if not words:
            return "0"  # as Elasticsearch: a match query without terms matches nothing
        query = '"' + " ".join(words) + '"' if value.quoted else " OR ".join(f'"{word}"' for word in words)
    params.append(query)
    return _MESSAGE


def _compare(field: str, op: str, text: str, params: list[object]) -> str:
    """`field op text` (op is = for `:`), text being a value parse() normalised."""
    kind = FIELDS[_checked(field)]
    if field == "@timestamp":
        params.append(date_ns(text))
        return "ts IS ?" if op == "=" else f"(ts IS NOT NULL AND ts {op} ?)"
    if field == "kamlog.call":
        params.append(text)
        return "call IS ?" if op == "=" else f"(call IS NOT NULL AND call {op} ?)"
    if field == "sip.call_id" and op == "=":
        params.append(text)
        return _CALL_ID
    if kind == "long":
        params.append(int(text))
        return _each(field, f"type = 'integer' AND value {op} ?")
    if kind == "ip":
        low, high = _ip_bounds(text)
        if op == "=":
            params += [low, high]
            return _each(field, "kamlog_ip(value) BETWEEN ? AND ?")
        params.append(low)
        return _each(field, f"kamlog_ip(value) {op} ?")
    if kind == "date_nanos":
        params.append(date_ns(text))
        return _each(field, f"kamlog_ns(value) {op} ?")
    # keyword: Elasticsearch indexes a number in a keyword field as its text
    params.append(text)
    return _each(field, f"CAST(value AS TEXT) {op} ?")


def _is(field: str, value: Literal | Wildcard, params: list[object]) -> str:
    kind = FIELDS[_checked(field)]
    if kind == "text":
        if field != "message":
            raise ValueError(f"{field} has no word index")
        return _message(value, params)
    if isinstance(value, Literal):
        return _compare(field, "=", value.text, params)
    if kind != "keyword":
        raise ValueError(f"{field} holds {kind} values, which take no wildcard")
    params.append(_glob(value.parts))
    if field == "kamlog.call":
        return "(call IS NOT NULL AND call GLOB ?)"
    return _each(field, "CAST(value AS TEXT) GLOB ?")


def _exists(field: str) -> str:
    if field == "@timestamp":
        return "ts IS NOT NULL"
    if field == "kamlog.call":
        return "call IS NOT NULL"
    return _each(field)


def _sql(node: Node, params: list[object]) -> str:
    match node:
        case MatchAll():
            return "1"
        case Exists(field):
            return _exists(field)
        case Is(field, value):
            return _is(field, value, params)
        case Range(field, op, value):
            if FIELDS[_checked(field)] == "text":
                raise ValueError(f"{field} holds words, which have no order")
            return _compare(field, op, value.text, params)
        case Not(query):
            return f"NOT ({_sql(query, params)})"
        case And(queries):
            return "(" + " AND ".join(_sql(query, params) for query in queries) + ")"
        case Or(queries):
            return "(" + " OR ".join(_sql(query, params) for query in queries) + ")"
    typing.assert_never(node)


def to_sql(node: Node) -> tuple[str, list[object]]:
    """A WHERE clause over `events` (with register_functions() done on the connection) and its
    parameters, in order."""
    params: list[object] = []
    return _sql(node, params), params
