import pytest

from kamlog.errors import GrammarError
from kamlog.parsing.pattern_syntax import Reference, parse_pattern


class TestParsePattern:
    def test_splits_regex_text_from_references_with_field_and_type(self):
        assert parse_pattern(r"^%{TS:timestamp:rfc3164} (\S+) %{HOST}", "p") == [
            "^",
            Reference("TS", "timestamp", "rfc3164", 2),
            r" (\S+) ",
            Reference("HOST", None, None, 32),
        ]

    def test_an_escaped_percent_stays_regex_text(self):
        assert parse_pattern(r"100\%{x}", "p") == [r"100\%{x}"]

    def test_a_lone_percent_is_regex_text(self):
        assert parse_pattern("50% %{A:message}", "p") == ["50% ", Reference("A", "message", None, 5)]

    @pytest.mark.parametrize(
        ("text", "column", "expected"),
        [("abc %{TS:ti", 12, "Expected '}'"), ("x %{}", 5, "Expected definition name"), ("%{A:Bad}", 4, "Expected '}'")],
    )
    def test_a_malformed_reference_is_a_grammar_error_naming_the_column(self, text, column, expected):
        with pytest.raises(GrammarError) as info:
            parse_pattern(text, "grammars/x.toml: pattern 'p'")
        message = str(info.value)
        assert message.startswith(f"grammars/x.toml: pattern 'p': invalid pattern at column {column}: {expected}")
        assert message.splitlines()[-1] == "    " + " " * (column - 1) + "^"
