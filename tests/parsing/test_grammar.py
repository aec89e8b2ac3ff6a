from pathlib import Path

import pytest

from kamlog.errors import GrammarError, UnknownGrammar
from kamlog.parsing.grammar import all_grammars, get_grammar, grammar_dir, grammar_files, lint, load_grammar


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


GOOD = """
[grammar]
name = "g"
description = "a test grammar"
[define]
WORD = '\\w+'
PAIR = '%{WORD:host} %{WORD:program}'
[[pattern]]
name = "p"
match = '%{PAIR} %{INT:pid:int} %{REST:message}'
"""


class TestLoadGrammar:
    def test_references_expand_into_one_regex_with_named_groups(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nINT = '\\d+'\nREST = '.*'\n")
        grammar = load_grammar(write(tmp_path, "g", GOOD))
        pattern = grammar.patterns[0]
        assert pattern.regex.pattern == r"(?:(?P<host>\w+) (?P<program>\w+)) (?P<pid>\d+) (?P<message>.*)"
        m = pattern.regex.match("vm kamailio 42 hello")
        assert {name: m[group] for name, (group, _) in pattern.fields.items()} == {
            "host": "vm", "program": "kamailio", "pid": "42", "message": "hello"
        }
        assert pattern.fields["pid"][1] == "int"

    def test_an_undefined_reference_names_the_pattern_and_column(self, tmp_path):
        path = write(tmp_path, "g", GOOD.replace("%{REST:message}", "%{NOPE:message}"))
        (tmp_path / "_base.toml").write_text("[define]\nINT = '\\d+'\n")
        with pytest.raises(GrammarError, match=r"g.toml: pattern 'p': column 24: %\{NOPE\} is not defined"):
            load_grammar(path)

    def test_definitions_that_refer_to_each_other_are_a_cycle_error(self, tmp_path):
        text = GOOD.replace("WORD = '\\w+'", "WORD = '%{PAIR}'")
        with pytest.raises(GrammarError, match="cycle: PAIR -> WORD -> PAIR"):
            load_grammar(write(tmp_path, "g", text))

    def test_an_unknown_field_lists_the_known_ones(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nINT = '\\d+'\nREST = '.*'\n")
        with pytest.raises(GrammarError, match="unknown field 'colour'; fields are timestamp, host"):
            load_grammar(write(tmp_path, "g", GOOD.replace("%{REST:message}", "%{REST:colour}")))

    def test_an_unknown_type_lists_the_known_ones(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nINT = '\\d+'\nREST = '.*'\n")
        with pytest.raises(GrammarError, match="unknown type 'float'; types are"):
            load_grammar(write(tmp_path, "g", GOOD.replace("pid:int", "pid:float")))

    def test_a_field_captured_twice_is_an_error(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nINT = '\\d+'\nREST = '.*'\n")
        with pytest.raises(GrammarError, match="field 'host' is captured twice"):
            load_grammar(write(tmp_path, "g", GOOD.replace("%{REST:message}", "%{WORD:host}")))

    def test_invalid_toml_names_the_file(self, tmp_path):
        with pytest.raises(GrammarError, match=r"g.toml: invalid TOML"):
            load_grammar(write(tmp_path, "g", "[grammar\nname="))

    def test_the_name_must_be_the_file_name(self, tmp_path):
        with pytest.raises(GrammarError, match="name must be 'other'"):
            load_grammar(write(tmp_path, "other", GOOD))

    def test_an_invalid_expanded_regex_is_reported_with_its_text(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nINT = '(\\d+'\nREST = '.*'\n")
        with pytest.raises(GrammarError, match="the expanded regular expression is invalid"):
            load_grammar(write(tmp_path, "g", GOOD))


class TestShippedGrammars:
    def test_every_shipped_grammar_compiles_and_passes_the_lint(self):
        grammars = all_grammars()
        assert {g.name for g in grammars} == {
            "kamailio-stderr", "kamailio-syslog", "kamailio-syslog-rfc3339", "kamailio-syslog-rfc5424",
            "kamailio-json", "journald-json",
        }
        problems = [problem for g in grammars for problem in lint(g)]
        assert problems == []

    def test_every_shipped_grammar_says_what_produced_it(self):
        for grammar in all_grammars():
            assert grammar.produced_by, grammar.name
            assert all("kamailio" in line for line in grammar.produced_by), grammar.name

    def test_an_unknown_grammar_name_lists_the_known_ones(self):
        with pytest.raises(UnknownGrammar, match="unknown grammar 'nope'; known grammars are journald-json, kamailio-json"):
            get_grammar("nope")

    def test_the_grammar_directory_holds_the_files(self):
        assert set(grammar_files()) <= {p.stem for p in grammar_dir().glob("*.toml")}


class TestFieldTypes:
    def test_an_int_field_that_is_not_a_number_decodes_to_none(self, tmp_path):
        (tmp_path / "_base.toml").write_text("[define]\nWORD = '\\w+'\nREST = '.*'\n")
        path = write(tmp_path, "g", '[grammar]\nname = "g"\ndescription = "d"\n[[pattern]]\nmatch = \'%{WORD:pid:int} %{REST:message}\'\n')
        from kamlog.parsing.logline import LineParser

        parser = LineParser(load_grammar(path), "x")
        [event] = list(parser.feed(b"abc hello\n", 0))
        assert (event.pid, event.message, event.values()[3]) == (None, "hello", None)
