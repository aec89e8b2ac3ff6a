"""KQL text -> AST: shapes, precedence, escapes, typed values, and errors a user can act on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamlog.errors import UsageError
from kamlog.query import KqlError, parse
from kamlog.query.kql import (
    And,
    Exists,
    Is,
    Literal,
    MatchAll,
    Node,
    Not,
    Or,
    Range,
    Wildcard,
    date_ns,
    rfc3339_ns,
    to_kql,
)

NOW = datetime(2026, 11, 28, 17, 0, 0, 123456, tzinfo=timezone.utc)


def msg(text: str, quoted: bool = False) -> Is:
    return Is("message", Literal(text, quoted))


def level(text: str) -> Is:
    return Is("log.level", Literal(text))


def error_of(query: str) -> KqlError:
    with pytest.raises(KqlError) as info:
        parse(query, now=NOW)
    return info.value


class TestShapes:
    @pytest.mark.parametrize("query", ["", "   ", "\t\n", "*"])
    def test_an_empty_query_or_a_bare_star_matches_everything(self, query: str) -> None:
        assert parse(query) == MatchAll()

    def test_a_bare_word_searches_the_message(self) -> None:
        assert parse("relay") == msg("relay")

    def test_several_unquoted_words_are_one_value(self) -> None:
        assert parse("message : no  route") == msg("no  route")
        assert parse("no route") == msg("no route")

    def test_a_quoted_value_is_marked_quoted(self) -> None:
        assert parse('"no route"') == msg("no route", quoted=True)
        assert parse('log.level:"ERROR"') == Is("log.level", Literal("ERROR", quoted=True))

    def test_spaces_around_the_colon_do_not_matter(self) -> None:
        assert parse("log.level:ERROR") == parse("log.level : ERROR") == parse(" log.level :\tERROR ") == level("ERROR")

    def test_a_lone_star_value_asks_whether_the_field_exists(self) -> None:
        assert parse("sip.call_id : *") == Exists("sip.call_id")

    def test_a_star_inside_a_value_is_a_wildcard(self) -> None:
        assert parse("sip.method : IN*TE") == Is("sip.method", Wildcard(("IN", "TE")))
        assert parse("sip.method : *VITE") == Is("sip.method", Wildcard(("", "VITE")))
        assert parse("sip.method : **") == Is("sip.method", Wildcard(("", "", "")))

    def test_a_star_inside_quotes_is_a_star(self) -> None:
        assert parse('sip.method : "IN*"') == Is("sip.method", Literal("IN*", quoted=True))

    @pytest.mark.parametrize(("op", "text"), [("<", "400"), ("<=", "400"), (">", "400"), (">=", "400")])
    def test_ranges_take_the_four_operators(self, op: str, text: str) -> None:
        assert parse(f"sip.code {op} {text}") == Range("sip.code", op, Literal("400"))  # type: ignore[arg-type]
        assert parse(f"sip.code{op}{text}") == Range("sip.code", op, Literal("400"))  # type: ignore[arg-type]

    def test_a_range_on_a_keyword_keeps_the_text(self) -> None:
        assert parse('log.level >= "E"') == Range("log.level", ">=", Literal("E", quoted=True))


class TestPrecedence:
    def test_and_binds_tighter_than_or(self) -> None:
        assert parse("a or b and c") == Or((msg("a"), And((msg("b"), msg("c")))))
        assert parse("a and b or c") == Or((And((msg("a"), msg("b"))), msg("c")))

    def test_not_binds_tighter_than_and(self) -> None:
        assert parse("not a and b") == And((Not(msg("a")), msg("b")))

    def test_parentheses_group(self) -> None:
        assert parse("not (a or b) and c") == And((Not(Or((msg("a"), msg("b")))), msg("c")))

    def test_chains_of_one_operator_are_flat(self) -> None:
        assert parse("a and b and c") == And((msg("a"), msg("b"), msg("c")))
        assert parse("a or b or c") == Or((msg("a"), msg("b"), msg("c")))

    def test_parentheses_keep_their_group(self) -> None:
        assert parse("(a and b) and c") == And((And((msg("a"), msg("b"))), msg("c")))

    @pytest.mark.parametrize("query", ["a AND b", "a And b", "a and b"])
    def test_keywords_are_case_insensitive(self, query: str) -> None:
        assert parse(query) == And((msg("a"), msg("b")))

    def test_not_may_be_repeated(self) -> None:
        assert parse("NOT not a") == Not(Not(msg("a")))

    def test_a_keyword_is_a_whole_word(self) -> None:
        assert parse("cannot find android") == msg("cannot find android")
        assert parse("notice or order") == Or((msg("notice"), msg("order")))

    def test_a_field_value_ends_at_a_keyword(self) -> None:
        assert parse("log.level : ERROR and relay") == And((level("ERROR"), msg("relay")))


class TestValueLists:
    def test_a_list_applies_its_field_to_each_value(self) -> None:
        assert parse("log.level : (ERROR or WARNING)") == Or((level("ERROR"), level("WARNING")))

    def test_lists_nest_with_the_same_precedence(self) -> None:
        assert parse("log.level : (a or b and not c)") == Or((level("a"), And((level("b"), Not(level("c"))))))
        assert parse("log.level : ((a or b) and c)") == And((Or((level("a"), level("b"))), level("c")))

    def test_a_list_may_be_a_single_negation(self) -> None:
        assert parse("log.level : (not a)") == Not(level("a"))

    def test_a_list_may_hold_a_star_and_quoted_values(self) -> None:
        assert parse('log.level : ("a b" or *)') == Or((Is("log.level", Literal("a b", True)), Exists("log.level")))

    def test_each_value_of_a_list_is_checked_against_the_field(self) -> None:
        assert parse("sip.code : (404 or 500)") == Or((Is("sip.code", Literal("404")), Is("sip.code", Literal("500"))))
        assert str(error_of("sip.code : (404 or x)")) == "position 20: sip.code holds numbers; 'x' is not one"


class TestEscapes:
    @pytest.mark.parametrize(
        ("query", "text"),
        [
            (r"a\(b\)", "a(b)"),
            (r"a\:b", "a:b"),
            (r"a\<b\>", "a<b>"),
            (r"a\"b", 'a"b'),
            (r"a\\b", "a\\b"),
            (r"a\ ", "a "),
            (r"\ a", " a"),
            (r"\and", "and"),
            (r"\nothing", "nothing"),
            (r"a\{b\}", "a{b}"),
        ],
    )
    def test_a_backslash_makes_the_next_character_plain_in_an_unquoted_value(self, query: str, text: str) -> None:
        assert parse(f"log.level : {query}") == level(text)

    def test_an_escaped_star_is_a_literal_star_beside_a_wildcard(self) -> None:
        assert parse(r"log.level : a\**") == Is("log.level", Wildcard(("a*", "")))
        assert parse(r"log.level : a\*") == level("a*")

    @pytest.mark.parametrize(
        ("query", "text"),
        [(r'"a\"b"', 'a"b'), (r'"a\\b"', "a\\b"), (r'"a\tb"', "a\tb"), (r'"a\qb"', "a\\qb"), ('""', "")],
    )
    def test_a_quoted_value_knows_quote_backslash_and_kibanas_whitespace_escapes(self, query: str, text: str) -> None:
        assert parse(f"log.level : {query}") == Is("log.level", Literal(text, quoted=True))

    def test_a_quoted_value_keeps_specials_and_keywords(self) -> None:
        assert parse('"a and (b): <c> or *"') == msg("a and (b): <c> or *", quoted=True)


class TestTypedValues:
    def test_numbers_are_normalised(self) -> None:
        assert parse("sip.code : 0404") == Is("sip.code", Literal("404"))
        assert parse('sip.code : "+7"') == Is("sip.code", Literal("7", True))

    def test_ip_addresses_and_blocks_are_normalised(self) -> None:
        assert parse('source.ip : "0:0::1"') == Is("source.ip", Literal("::1", True))
        assert parse("source.ip : 10.1.2.3/8") == Is("source.ip", Literal("10.0.0.0/8"))
        assert parse("source.ip : 127.0.0.1") == Is("source.ip", Literal("127.0.0.1"))

    def test_a_date_is_one_instant_in_rfc3339_with_nanoseconds(self) -> None:
        assert parse('@timestamp : "2026-11-28T18:00:00.123456789+01:00"') == Is(
            "@timestamp", Literal("2026-11-28T17:00:00.123456789Z", True)
        )

    def test_a_date_without_a_zone_is_utc(self) -> None:
        assert parse("@timestamp >= 2026-11-28") == Range("@timestamp", ">=", Literal("2026-11-28T00:00:00.000000000Z"))

    @pytest.mark.parametrize(
        ("math", "instant"),
        [
            ("now", "2026-11-28T17:00:00.123456000Z"),
            ("now-15m", "2026-11-28T16:45:00.123456000Z"),
            ("now-1h", "2026-11-28T16:00:00.123456000Z"),
            ("now-2d", "2026-11-26T17:00:00.123456000Z"),
            ("now+1w-30s", "2026-12-05T16:59:30.123456000Z"),
            ("now-1M", "2026-10-28T17:00:00.123456000Z"),
            ("now-1y", "2025-11-28T17:00:00.123456000Z"),
        ],
    )
    def test_date_math_counts_from_the_given_now(self, math: str, instant: str) -> None:
        assert parse(f"@timestamp > {math}", now=NOW) == Range("@timestamp", ">", Literal(instant))

    def test_every_now_in_a_query_is_the_same_instant(self) -> None:
        node = parse("@timestamp > now-1h and kamlog.original_timestamp < now")
        assert isinstance(node, And)
        first, second = node.queries
        assert isinstance(first, Range) and isinstance(second, Range)
        assert date_ns(second.value.text) - date_ns(first.value.text) == 3600 * 10**9

    def test_date_nanos_keep_all_nine_digits(self) -> None:
        assert date_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
        assert rfc3339_ns(1_000_000_001) == "1970-01-01T00:00:01.000000001Z"

    def test_text_values_keep_their_case(self) -> None:
        assert parse("message : Rout*") == Is("message", Wildcard(("Rout", "")))

    def test_a_text_prefix_is_one_word_of_letters_digits_and_underscores(self) -> None:
        assert parse("t_rel*") == Is("message", Wildcard(("t_rel", "")))
        assert str(error_of("t-rel*")) == (
            "position 1: message is searched by words; a wildcard may only end a single word, like rout* ('t-rel*')"
        )


class TestErrors:
    def test_errors_are_usage_errors_with_exit_code_2(self) -> None:
        error = error_of("log.level :")
        assert isinstance(error, UsageError) and error.exit_code == 2

    @pytest.mark.parametrize(
        ("query", "message", "position", "expected"),
        [
            ("log.level :", "position 12: expected a value", 12, "a value"),
            ("log.level : ", "position 13: expected a value", 13, "a value"),
            ("(a and", "position 7: expected a query", 7, "a query"),
            ("(a", "position 3: expected 'and', 'or' or ')'", 3, "'and', 'or' or ')'"),
            ("a or", "position 5: expected a query", 5, "a query"),
            ("not", "position 4: expected a query", 4, "a query"),
            ("sip.code >", "position 11: expected a value", 11, "a value"),
            ("sip.code > (1)", "position 12: expected a value", 12, "a value"),
            ("log.level : ERROR )", "position 19: expected 'and', 'or' or the end of the query", 19, None),
            ("a b c )", "position 7: expected 'and', 'or' or the end of the query", 7, None),
            ('"a" "b"', "position 5: expected 'and', 'or' or the end of the query", 5, None),
            (")", "position 1: expected a query", 1, "a query"),
            ("log.level : (a or", "position 18: expected a value", 18, "a value"),
            ("log.level : not a", "position 13: expected a value", 13, "a value"),
            ('log.level : "abc', "position 17: expected a closing '\"'", 17, "a closing '\"'"),
            ('log.level : "ab\\"', "position 18: expected a closing '\"'", 18, "a closing '\"'"),
        ],
    )
    def test_syntax_errors_say_where_and_what_was_expected(
        self, query: str, message: str, position: int, expected: str | None
    ) -> None:
        error = error_of(query)
        assert str(error) == message
        assert error.position == position
        assert error.text == query
        if expected is not None:
            assert error.expected == expected

    def test_a_query_nested_too_deeply_is_an_error_not_a_crash(self) -> None:
        assert str(error_of("(" * 500 + "a" + ")" * 500)) == "position 1: the query nests parentheses or 'not' too deeply"
        assert parse("(" * 20 + "a" + ")" * 20) == msg("a")

    def test_an_unquoted_colon_in_a_value_gets_a_hint(self) -> None:
        assert str(error_of("@timestamp > 2026-11-28T17:00:00Z")) == (
            "position 27: expected 'and', 'or' or the end of the query (quote a value that holds ':', like \"::1\")"
        )

    def test_an_unknown_field_is_named_with_close_suggestions(self) -> None:
        assert str(error_of("sip.cod : 404")) == (
            "position 1: unknown field 'sip.cod'; did you mean sip.code, sip.method or sip.cseq.code?"
        )
        assert str(error_of("relay and log.levle : ERROR")) == (
            "position 11: unknown field 'log.levle'; did you mean log.level?"
        )

    def test_an_unknown_field_without_a_close_one_is_just_named(self) -> None:
        assert str(error_of("zzz : 1")) == "position 1: unknown field 'zzz'"
        assert str(error_of("level : 1")) == "position 1: unknown field 'level'; did you mean log.level?"

    def test_wildcard_field_names_are_not_supported(self) -> None:
        assert str(error_of("sip.* : INVITE")) == (
            "position 1: wildcards in field names (sip.*) are not supported; name one field"
        )

    def test_nested_queries_are_not_supported(self) -> None:
        assert str(error_of("sip.via.original : { a : b }")) == (
            "position 20: nested field queries (field : { ... }) are not supported"
        )

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("sip.code : abc", "position 12: sip.code holds numbers; 'abc' is not one"),
            ("sip.code : 4*", "position 12: sip.code holds numbers; '4*' is not one"),
            ("sip.code > 1.5", "position 12: sip.code holds numbers; '1.5' is not one"),
            ("sip.code : 99999999999999999999", "position 12: sip.code holds numbers; '99999999999999999999' is not one"),
            (
                "source.ip : 1.2.3.x",
                "position 13: source.ip holds IP addresses; '1.2.3.x' is neither an address nor a CIDR block",
            ),
            (
                'source.ip : "fe80::1%eth0"',
                "position 13: source.ip holds IP addresses; 'fe80::1%eth0' is neither an address nor a CIDR block",
            ),
            (
                "source.ip : 10.*",
                "position 13: source.ip holds IP addresses; use a CIDR block like 10.0.0.0/8 rather than a wildcard ('10.*')",
            ),
            (
                "source.ip > 10.0.0.0/8",
                "position 13: a range on source.ip compares with one address, not a CIDR block ('10.0.0.0/8')",
            ),
            (
                "@timestamp > yesterday",
                "position 14: @timestamp holds dates; 'yesterday' is not an ISO 8601 date or time, nor date math like now-15m",
            ),
            ("@timestamp > now/d", "position 14: date rounding and anchored date math ('now/d') are not supported"),
            ("@timestamp > 1969-12-31", "position 14: '1969-12-31' is outside the dates @timestamp can hold (1970 to 2262)"),
            ("message > a", "position 1: message is searched by words, which have no order: it takes no >"),
            (
                "message : ro*te",
                "position 11: message is searched by words; a wildcard may only end a single word, like rout* ('ro*te')",
            ),
            (
                "no rout*",
                "position 1: message is searched by words; a wildcard may only end a single word, like rout* ('no rout*')",
            ),
            (
                "log.level > E*",
                "position 13: a range compares with one value, not a wildcard ('E*'); write \\* for a star",
            ),
        ],
    )
    def test_values_are_checked_against_the_field_type(self, query: str, message: str) -> None:
        assert str(error_of(query)) == message


# --- printing back -----------------------------------------------------------------------------

_KEYWORDS = ["log.level", "sip.method", "sip.via.original", "kamlog.call"]
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXT = st.text(_CHARS, max_size=8) | st.sampled_from(["and", "or", "NOT", " a", "b ", "a b", "*", "\\", '"', "a\\tb"])


def _keyword_value() -> st.SearchStrategy[Node]:
    literal = st.builds(Literal, _TEXT, st.booleans()).filter(lambda v: v.quoted or v.text != "")
    wildcard = st.lists(_TEXT, min_size=2, max_size=4).map(tuple).filter(lambda p: p != ("", "")).map(Wildcard)
    return st.builds(Is, st.sampled_from(_KEYWORDS), literal | wildcard)


_WORDS = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=6)
_LEAVES = st.one_of(
    _keyword_value(),
    st.builds(lambda text, quoted: Is("message", Literal(text, quoted)), _TEXT, st.booleans()).filter(
        lambda n: n.value.quoted or n.value.text != ""
    ),
    st.builds(lambda word: Is("message", Wildcard((word, ""))), _WORDS),
    st.builds(lambda n, q: Is("sip.code", Literal(str(n), q)), st.integers(-(2**63), 2**63 - 1), st.booleans()),
    st.builds(Exists, st.sampled_from(_KEYWORDS + ["sip.code", "@timestamp", "message"])),
    st.builds(Range, st.sampled_from(_KEYWORDS), st.sampled_from(["<", "<=", ">", ">="]), st.builds(Literal, _TEXT, st.just(True))),
    st.just(MatchAll()),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda qs: And(tuple(qs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda qs: Or(tuple(qs))),
    ),
    max_leaves=8,
)


class TestToKql:
    def test_printing_is_plain_where_it_can_be(self) -> None:
        assert to_kql(parse("not a and (b or log.level : x*y)")) == "not message : a and (message : b or log.level : x*y)"
        assert to_kql(parse(r'log.level : \and \ a\*b\ ')) == r"log.level : \and  a\*b\ "

    @settings(max_examples=300, deadline=None)
    @given(_TREES)
    def test_printed_asts_parse_back_to_themselves(self, node: Node) -> None:
        assert parse(to_kql(node)) == node
