"""KQL -> Elasticsearch query DSL: the exact queries, by field type."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from kamlog.query import parse, to_dsl
from kamlog.query.kql import Is, Literal

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)

CASES: list[tuple[str, dict[str, Any]]] = [
    ("", {"match_all": {}}),
    ("*", {"match_all": {}}),
    # keyword: exact, case-sensitive
    ("log.level : ERROR", {"term": {"log.level": "ERROR"}}),
    ('log.level : "ERROR"', {"term": {"log.level": "ERROR"}}),
    ("sip.status : Not\\ Found", {"term": {"sip.status": "Not Found"}}),
    ('sip.status : "Not Found"', {"term": {"sip.status": "Not Found"}}),
    ("sip.method : IN*", {"wildcard": {"sip.method": {"value": "IN*"}}}),
    ("sip.uri.original : *?x\\*\\\\*", {"wildcard": {"sip.uri.original": {"value": "*\\?x\\*\\\\*"}}}),
    ('sip.method : "IN*"', {"term": {"sip.method": "IN*"}}),
    ("sip.call_id : *", {"exists": {"field": "sip.call_id"}}),
    ('log.level >= "E"', {"range": {"log.level": {"gte": "E"}}}),
    # long
    ("sip.code : 404", {"term": {"sip.code": 404}}),
    ('sip.code : "404"', {"term": {"sip.code": 404}}),
    ("sip.code >= 400", {"range": {"sip.code": {"gte": 400}}}),
    ("sip.code < 200", {"range": {"sip.code": {"lt": 200}}}),
    # ip: Elasticsearch takes a CIDR block in a term query on an ip field
    ("source.ip : 127.0.0.1", {"term": {"source.ip": "127.0.0.1"}}),
    ('source.ip : "0:0::1"', {"term": {"source.ip": "::1"}}),
    ('source.ip : "127.0.0.0/8"', {"term": {"source.ip": "127.0.0.0/8"}}),
    ("destination.ip > 10.0.0.1", {"range": {"destination.ip": {"gt": "10.0.0.1"}}}),
    # date_nanos: one instant is a range of one, in RFC 3339 with nanoseconds
    (
        '@timestamp : "2026-11-28T17:00:00.123456Z"',
        {"range": {"@timestamp": {"gte": "2026-11-28T17:00:00.123456000Z", "lte": "2026-11-28T17:00:00.123456000Z"}}},
    ),
    ("@timestamp > now-15m", {"range": {"@timestamp": {"gt": "2026-11-28T16:45:00.000000000Z"}}}),
    ('kamlog.original_timestamp <= "2026-11-28"', {"range": {"kamlog.original_timestamp": {"lte": "2026-11-28T00:00:00.000000000Z"}}}),
    # text: words, phrase, prefix
    ("no route", {"match": {"message": {"query": "no route", "operator": "or"}}}),
    ("message : relay", {"match": {"message": {"query": "relay", "operator": "or"}}}),
    ('"no route"', {"match_phrase": {"message": "no route"}}),
    ("Rout*", {"prefix": {"message": "rout"}}),
    ("t_Rel*", {"prefix": {"message": "t_rel"}}),
    ("message : *", {"exists": {"field": "message"}}),
    # boolean structure
    ("not log.level : ERROR", {"bool": {"must_not": [{"term": {"log.level": "ERROR"}}]}}),
    (
        "log.level : ERROR and sip.code : 404",
        {"bool": {"filter": [{"term": {"log.level": "ERROR"}}, {"term": {"sip.code": 404}}]}},
    ),
    (
        "log.level : (ERROR or WARNING)",
        {"bool": {"should": [{"term": {"log.level": "ERROR"}}, {"term": {"log.level": "WARNING"}}], "minimum_should_match": 1}},
    ),
    (
        "a or b and not c",
        {
            "bool": {
                "should": [
                    {"match": {"message": {"query": "a", "operator": "or"}}},
                    {
                        "bool": {
                            "filter": [
                                {"match": {"message": {"query": "b", "operator": "or"}}},
                                {"bool": {"must_not": [{"match": {"message": {"query": "c", "operator": "or"}}}]}},
                            ]
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        },
    ),
]


class TestToDsl:
    @pytest.mark.parametrize(("query", "dsl"), CASES, ids=[query or "(empty)" for query, _ in CASES])
    def test_each_query_compiles_to_the_query_kibana_would_send(self, query: str, dsl: dict[str, Any]) -> None:
        assert to_dsl(parse(query, now=NOW)) == dsl

    def test_a_hand_made_ast_naming_an_unknown_field_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown field 'nope'"):
            to_dsl(Is("nope", Literal("x")))
