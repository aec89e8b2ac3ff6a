"""KQL -> SQLite: which of a set of hand-made documents each query finds in the store's schema,
with Elasticsearch's meaning (lists, nulls, not, ranges, wildcards, CIDR, IPv6, words and phrases)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from kamlog.query import parse, register_functions, to_sql
from kamlog.query.kql import Is, Literal, date_ns
from kamlog.store.schema import DDL

NOW = datetime(2026, 11, 28, 18, 0, tzinfo=timezone.utc)
T = "2026-11-28T17:00:"

DOCS: dict[str, dict[str, Any]] = {
    "invite": {"@timestamp": T + "00.000000Z", "message": "INVITE sip:bob@example.com", "sip.method": "INVITE",
               "sip.call_id": "abc@h", "kamlog.call": "abc@h", "sip.via.original": ["SIP/2.0/UDP a", "SIP/2.0/UDP b"],
               "source.ip": "127.0.0.1", "source.port": 5060, "sip.uri.original": "sip:bob@example.com"},
    "trying": {"@timestamp": T + "00.010000Z", "message": "SIP/2.0 100 Trying", "sip.code": 100, "sip.status": "Trying",
               "sip.call_id": "abc@h", "kamlog.call": "abc@h", "sip.via.original": ["SIP/2.0/UDP b"],
               "source.ip": "127.0.0.2"},
    "no_route": {"@timestamp": T + "00.123456Z", "log.level": "ERROR", "message": "no route to bob",
                 "sip.call_id": "abc@h", "kamlog.call": "abc@h", "process.pid": 4242},
    "not_found": {"@timestamp": T + "00.200000Z", "message": "SIP/2.0 404 Not Found", "sip.code": 404,
                  "sip.status": "Not Found", "sip.call_id": "abc@h", "kamlog.call": "abc@h", "source.ip": "10.1.2.3"},
    "route_ok": {"@timestamp": T + "01Z", "log.level": "INFO", "message": "route found: relay to gw",
                 "sip.call_id": "xyz@h", "kamlog.call": "xyz@h"},
    "routing": {"@timestamp": T + "02Z", "log.level": "WARNING", "message": "Routing loop detected",
                "sip.call_id": "xyz@h", "kamlog.call": "xyz@h"},
    "v6": {"@timestamp": T + "03Z", "message": "OPTIONS keepalive", "sip.method": "OPTIONS", "source.ip": "::1"},
    "v6_net": {"@timestamp": T + "04Z", "message": "REGISTER", "sip.method": "REGISTER", "source.ip": "2001:db8::5",
               "destination.ip": "2001:db8::1"},
    "mapped": {"@timestamp": T + "05Z", "message": "mapped", "source.ip": "::ffff:127.0.0.3"},
    "no_time": {"@timestamp": None, "log.level": "DEBUG", "message": "startup: listening on udp",
                "sip.call_id": None, "kamlog.call": None, "kamlog.original_timestamp": None},
    "no_message": {"@timestamp": "2026-11-28T16:59:59Z", "message": None, "log.level": "info", "kamlog.call": None},
    "late": {"@timestamp": "2026-11-28T18:00:00Z", "kamlog.original_timestamp": "2026-11-28T19:00:00.5+01:00",
             "log.level": "ERROR", "message": "timer expired", "sip.call_id": "late@h", "kamlog.call": "late@h"},
    "early_orig": {"@timestamp": "2026-11-28T17:30:00Z", "kamlog.original_timestamp": "2026-11-28T17:29:59.999999Z",
                   "message": "clock"},
    "specials": {"@timestamp": T + "06Z", "message": "odd uri", "sip.uri.original": "sip:a[1]?*@h"},
    "brackets": {"@timestamp": T + "07Z", "message": "plain uri", "sip.uri.original": "sip:a1x@h"},
    "expires": {"@timestamp": T + "08Z", "message": "contact", "sip.contact.expires": 3600,
                "sip.sdp.media.port": [4000, 4002]},
    "via_null": {"@timestamp": T + "09Z", "message": "lists", "sip.allow": [None, "INVITE"], "sip.via.original": []},
    "cafe": {"@timestamp": T + "10Z", "message": "Café déjà vu"},
    "quote": {"@timestamp": T + "11Z", "message": 'say "hi" there', "log.level": 'a"b'},
    "t_relay": {"@timestamp": T + "12Z", "message": "t_relay() failed"},
}
ALL = set(DOCS)


@pytest.fixture(scope="module")
def store() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(DDL)
    register_functions(conn)
    for order, (name, doc) in enumerate(DOCS.items()):
        stamp = doc.get("@timestamp")
        cursor = conn.execute(
            "INSERT INTO events (id, ts, call, ord, doc) VALUES (?, ?, ?, ?, ?)",
            (name, date_ns(stamp) if stamp else None, doc.get("kamlog.call"), order, json.dumps(doc)),
        )
        if doc.get("message") is not None:
            conn.execute("INSERT INTO messages (rowid, message) VALUES (?, ?)", (cursor.lastrowid, doc["message"]))
    yield conn
    conn.close()


def found(store: sqlite3.Connection, query: str) -> set[str]:
    clause, params = to_sql(parse(query, now=NOW))
    return {row[0] for row in store.execute(f"SELECT id FROM events WHERE {clause} ORDER BY ts, rowid", params)}


CASES: list[tuple[str, set[str]]] = [
    ("", ALL),
    ("*", ALL),
    # keyword: exact and case-sensitive; a list matches when any item does; null is absent
    ("log.level : ERROR", {"no_route", "late"}),
    ("log.level : error", set()),
    ("log.level : info", {"no_message"}),
    ('log.level : "a\\"b"', {"quote"}),
    ("log.level : (ERROR or WARNING)", {"no_route", "late", "routing"}),
    ("log.level : (not ERROR)", ALL - {"no_route", "late"}),
    ("log.level : *", {"no_route", "route_ok", "routing", "no_time", "no_message", "late", "quote"}),
    ('sip.via.original : "SIP/2.0/UDP b"', {"invite", "trying"}),
    ('sip.via.original : "SIP/2.0/UDP a"', {"invite"}),
    ("sip.via.original : *", {"invite", "trying"}),
    ("sip.allow : INVITE", {"via_null"}),
    ("sip.allow : *", {"via_null"}),
    ("sip.call_id : abc@h", {"invite", "trying", "no_route", "not_found"}),
    ("sip.call_id : *", {"invite", "trying", "no_route", "not_found", "route_ok", "routing", "late"}),
    ("kamlog.call : abc@h", {"invite", "trying", "no_route", "not_found"}),
    ("kamlog.call : x*", {"route_ok", "routing"}),
    ("kamlog.call : *", {"invite", "trying", "no_route", "not_found", "route_ok", "routing", "late"}),
    ("sip.contact.expires : 3600", {"expires"}),
    # keyword wildcards: only `*` is special, GLOB's own specials are literal
    ("log.level : E*", {"no_route", "late"}),
    ("log.level : *ING", {"routing"}),
    ("log.level : *R*O*", {"no_route", "late"}),
    (r"sip.uri.original : sip\:a[1]?\**", {"specials"}),
    ("sip.uri.original : *?*", {"specials"}),
    ("sip.uri.original : *]*", {"specials"}),
    ("sip.uri.original : sip\\:a1*", {"brackets"}),
    # keyword ranges compare bytes
    ("log.level >= E and log.level < F", {"no_route", "late"}),
    ("log.level > a", {"no_message", "quote"}),
    ("kamlog.call > x", {"route_ok", "routing"}),
    # long
    ("sip.code : 404", {"not_found"}),
    ("sip.code >= 400", {"not_found"}),
    ("sip.code < 200", {"trying"}),
    ("sip.code > 100 and sip.code <= 404", {"not_found"}),
    ("sip.sdp.media.port : 4002", {"expires"}),
    ("sip.sdp.media.port > 4001", {"expires"}),
    ("sip.sdp.media.port > 5000", set()),
    # dates: instants to the nanosecond, the column for @timestamp, the document for the rest
    ('@timestamp : "2026-11-28T17:00:00.123456Z"', {"no_route"}),
    ('@timestamp : "2026-11-28T18:00:00.123456+01:00"', {"no_route"}),
    ('@timestamp > "2026-11-28T17:00:00.123456Z"', ALL - {"invite", "trying", "no_route", "no_time", "no_message"}),
    ('@timestamp < "2026-11-28T17:00:00Z"', {"no_message"}),
    ('@timestamp <= "2026-11-28T17:00:00.000000001Z"', {"no_message", "invite"}),
    ("@timestamp >= now-1h", ALL - {"no_time", "no_message"}),
    ("@timestamp < now-1h", {"no_message"}),
    ("@timestamp : *", ALL - {"no_time"}),
    ('kamlog.original_timestamp : "2026-11-28T18:00:00.5Z"', {"late"}),
    ('kamlog.original_timestamp > "2026-11-28T17:59:59Z"', {"late"}),
    ('kamlog.original_timestamp < "2026-11-28T17:30"', {"early_orig"}),
    ("kamlog.original_timestamp : *", {"late", "early_orig"}),
    # ip: addresses compare as Elasticsearch's 16 bytes, IPv4 as IPv4-mapped IPv6
    ("source.ip : 127.0.0.1", {"invite"}),
    ('source.ip : "127.0.0.0/8"', {"invite", "trying", "mapped"}),
    ("source.ip : 127.0.0.3", {"mapped"}),
    ('source.ip : "::ffff:127.0.0.3"', {"mapped"}),
    ('source.ip : "::1"', {"v6"}),
    ('source.ip : "0:0::1"', {"v6"}),
    ('source.ip : "2001:db8::/32"', {"v6_net"}),
    ("source.ip > 10.0.0.0", {"invite", "trying", "not_found", "mapped", "v6_net"}),
    ("source.ip < 10.0.0.0", {"v6"}),
    ('destination.ip : "2001:db8::1"', {"v6_net"}),
    # text: words (any), phrase (in order), prefix; null and absent messages match nothing
    ("route", {"no_route", "route_ok"}),
    ("ROUTE", {"no_route", "route_ok"}),
    ("no route", {"no_route", "route_ok"}),
    ('"no route"', {"no_route"}),
    ('"route no"', set()),
    ("rout*", {"no_route", "route_ok", "routing"}),
    ("message : ROUT*", {"no_route", "route_ok", "routing"}),
    ("message : relay", {"route_ok"}),
    ('"sip:bob"', {"invite"}),
    ("404", {"not_found"}),
    ("Café", {"cafe"}),
    ('message : "déjà vu"', {"cafe"}),
    ('message : "say \\"hi\\""', {"quote"}),
    ('message : "..."', set()),
    # `_` joins words, as in Elasticsearch's standard analyzer
    ("t_relay", {"t_relay"}),
    ("relay", {"route_ok"}),
    ("t_rel*", {"t_relay"}),
    ('"t_relay() failed"', {"t_relay"}),
    ("message : *", ALL - {"no_message"}),
    # structure
    ("log.level : ERROR and route", {"no_route"}),
    ("log.level : ERROR or sip.code : 404", {"no_route", "late", "not_found"}),
    ("not (log.level : ERROR or sip.code : 404)", ALL - {"no_route", "late", "not_found"}),
    ("not not sip.code : 404", {"not_found"}),
]


class TestToSql:
    @pytest.mark.parametrize(("query", "expected"), CASES, ids=[query or "(empty)" for query, _ in CASES])
    def test_each_query_finds_what_elasticsearch_would(
        self, store: sqlite3.Connection, query: str, expected: set[str]
    ) -> None:
        assert found(store, query) == expected

    @pytest.mark.parametrize("query", [query for query, _ in CASES if query])
    def test_not_finds_exactly_the_other_documents_missing_and_null_fields_included(
        self, store: sqlite3.Connection, query: str
    ) -> None:
        assert found(store, f"not ({query})") == ALL - found(store, query)

    def test_a_missing_or_null_field_matches_its_negation(self, store: sqlite3.Connection) -> None:
        assert {"no_time", "v6"} <= found(store, "not sip.call_id : abc@h")
        assert {"no_time", "no_message"} == found(store, "not @timestamp >= now-1h")
        assert "no_message" in found(store, "not route")

    def test_values_are_parameters_never_sql_text(self) -> None:
        clause, params = to_sql(parse("log.level : \"x' OR 1=1 --\" and rout*"))
        assert "OR 1=1" not in clause
        assert params == ["x' OR 1=1 --", '"rout"*']

    def test_text_queries_are_fts5_words_phrases_and_prefixes(self) -> None:
        assert to_sql(parse("No-route here"))[1] == ['"no" OR "route" OR "here"']
        assert to_sql(parse('"No-route here"'))[1] == ['"no route here"']
        assert to_sql(parse("Rout*"))[1] == ['"rout"*']
        assert to_sql(parse(r"t_relay\(\)\: no-route"))[1] == ['"t_relay" OR "no" OR "route"']
        assert to_sql(parse('"--"')) == ("0", [])

    def test_the_empty_query_is_true(self) -> None:
        assert to_sql(parse("")) == ("1", [])

    def test_call_id_lookups_use_the_index(self, store: sqlite3.Connection) -> None:
        clause, params = to_sql(parse("sip.call_id : abc@h"))
        plan = " ".join(row[-1] for row in store.execute(f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {clause}", params))
        assert "events_call_id" in plan

    def test_timestamp_ranges_use_the_index(self, store: sqlite3.Connection) -> None:
        clause, params = to_sql(parse("@timestamp > now-1h", now=NOW))
        plan = " ".join(row[-1] for row in store.execute(f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {clause}", params))
        assert "events_ts" in plan

    def test_the_registered_functions_give_null_for_what_they_cannot_read(self, store: sqlite3.Connection) -> None:
        row = store.execute("SELECT kamlog_ip('x'), kamlog_ip(3), kamlog_ns('x'), kamlog_ns(NULL), kamlog_ns('1970-01-01T00:00:01.5Z')")
        assert row.fetchone() == (None, None, None, None, 1_500_000_000)

    def test_a_hand_made_ast_naming_an_unknown_field_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown field"):
            to_sql(Is("x') OR 1=1 --", Literal("x")))
