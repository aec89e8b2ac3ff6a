"""Loads the grammar files of grammars/ and compiles each pattern into one stdlib `re` pattern.

A grammar file (TOML) names a log source and what produced it, defines named regex fragments
(`[define]`, on top of `_base.toml`), and lists patterns tried in order (`[[pattern]]`).
References `%{NAME:field:type}` (see pattern_syntax) expand into named groups; the result is
compiled once and cached, and each captured field gets a decoder `type` applied when read.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Iterable, Mapping

from ..errors import GrammarError, UnknownGrammar
from ..events import FIELDS
from .pattern_syntax import Reference, parse_pattern

# Captures that are not event fields: `json` is decoded as a JSON object through the grammar's
# [json] key map; `body` is matched again with the grammar's body patterns.
SPECIAL_FIELDS: Final = frozenset({"json", "body"})
TYPES: Final = frozenset(
    {"str", "int", "rfc3164", "rfc3339", "epoch_us", "unbracket", "rsyslog", "jstr"}
)
MULTILINE_MODES: Final = frozenset({"none", "continuation"})
_BASE: Final = "_base"


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """One pattern of a grammar: its regex and the group number that captures each field."""

    name: str
    source: str  # the pattern as written
    regex: re.Pattern[str]
    fields: Mapping[str, tuple[int, str]]  # field -> (group number, type)


@dataclass(frozen=True, slots=True)
class Grammar:
    name: str
    path: str
    description: str
    produced_by: tuple[str, ...]
    multiline: str
    patterns: tuple[CompiledPattern, ...]
    other: re.Pattern[str] | None  # lines of other programs (skipped, not errors)
    body_patterns: tuple[CompiledPattern, ...]
    json_keys: Mapping[str, tuple[str, str]]  # dotted JSON key -> (field, type)
    json_key_prefixes: tuple[str, ...]
    json_required: tuple[str, ...]  # a JSON object is this grammar's only with one of these keys
    priority: int
    options: Mapping[str, Any] = field(default_factory=dict)


def grammar_dir() -> Path:
    """grammars/ inside the installed package, or the checkout's top-level grammars/."""
    packaged = resources.files("kamlog") / "grammars"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent.parent / "grammars"


def grammar_files(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or grammar_dir()
    if not directory.is_dir():
        raise GrammarError(f"the grammar directory {directory} does not exist")
    return {p.stem: p for p in sorted(directory.glob("*.toml")) if p.stem != _BASE}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise GrammarError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise GrammarError(f"{path}: cannot be read: {exc.strerror}") from None


@cache
def _base(directory: Path) -> dict[str, Any]:
    path = directory / f"{_BASE}.toml"
    return _read_toml(path) if path.exists() else {}


def _base_definitions(directory: Path) -> dict[str, str]:
    return _string_table(_base(directory).get("define", {}), directory / f"{_BASE}.toml", "define")


def _string_table(table: Any, path: Path, what: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise GrammarError(f"{path}: [{what}] must map names to strings")
    return dict(table)


class _Expander:
    """Expands references recursively into one regex, collecting captured fields in order."""

    def __init__(self, definitions: Mapping[str, str], path: Path) -> None:
        self.definitions = definitions
        self.path = path

    def expand(self, text: str, where: str) -> tuple[str, list[tuple[str, str]]]:
        captured: list[tuple[str, str]] = []
        regex = self._expand(text, where, (), captured)
        return regex, captured

    def _expand(
        self, text: str, where: str, stack: tuple[str, ...], captured: list[tuple[str, str]]
    ) -> str:
        out: list[str] = []
        for element in parse_pattern(text, where):
            if isinstance(element, str):
                out.append(element)
                continue
            out.append(self._reference(element, where, stack, captured))
        return "".join(out)

    def _reference(
        self,
        ref: Reference,
        where: str,
        stack: tuple[str, ...],
        captured: list[tuple[str, str]],
    ) -> str:
        if ref.name in stack:
            cycle = " -> ".join((*stack, ref.name))
            raise GrammarError(f"{where}: definitions refer to each other in a cycle: {cycle}")
        body = self.definitions.get(ref.name)
        if body is None:
            raise GrammarError(
                f"{where}: column {ref.column}: %{{{ref.name}}} is not defined in "
                f"{self.path.name} nor in {_BASE}.toml"
            )
        inner = self._expand(body, f"{self.path}: [define] {ref.name}", (*stack, ref.name), captured)
        if ref.field is None:
            return f"(?:{inner})"
        if ref.field not in FIELDS and ref.field not in SPECIAL_FIELDS:
            raise GrammarError(
                f"{where}: column {ref.column}: unknown field {ref.field!r}; fields are "
                f"{', '.join((*FIELDS, *sorted(SPECIAL_FIELDS)))}"
            )
        kind = ref.type or "str"
        if kind not in TYPES:
            raise GrammarError(
                f"{where}: column {ref.column}: unknown type {kind!r}; types are {', '.join(sorted(TYPES))}"
            )
        if any(name == ref.field for name, _ in captured):
            raise GrammarError(f"{where}: field {ref.field!r} is captured twice")
        captured.append((ref.field, kind))
        return f"(?P<{ref.field}>{inner})"


def _compile(
    expander: _Expander, name: str, text: str, where: str, flags: int = 0
) -> CompiledPattern:
    regex_text, captured = expander.expand(text, where)
    try:
        regex = re.compile(regex_text, flags)
    except re.error as exc:
        raise GrammarError(f"{where}: the expanded regular expression is invalid: {exc}\n    {regex_text}") from None
    fields = {fname: (regex.groupindex[fname], kind) for fname, kind in captured}
    return CompiledPattern(name, text, regex, fields)


def load_grammar(
    path: Path, overrides: Mapping[str, str] | None = None, directory: Path | None = None
) -> Grammar:
    """Read and compile one grammar file; `overrides` replace definitions (e.g. PROGRAM)."""
    data = _read_toml(path)
    head = data.get("grammar")
    if not isinstance(head, dict):
        raise GrammarError(f"{path}: a [grammar] table with name and description is required")
    name = head.get("name")
    if name != path.stem:
        raise GrammarError(f"{path}: [grammar] name must be {path.stem!r} (the file name), not {name!r}")
    description = head.get("description")
    if not isinstance(description, str) or not description:
        raise GrammarError(f"{path}: [grammar] description is required")
    produced = head.get("produced_by", [])
    if isinstance(produced, str):
        produced = [produced]
    multiline = head.get("multiline", "none")
    if multiline not in MULTILINE_MODES:
        raise GrammarError(f"{path}: multiline must be one of {sorted(MULTILINE_MODES)}, not {multiline!r}")
    priority = head.get("priority", 0)
    if not isinstance(priority, int):
        raise GrammarError(f"{path}: priority must be an integer")

    definitions = dict(_base_definitions(directory or path.parent))
    definitions.update(_string_table(data.get("define", {}), path, "define"))
    definitions.update(overrides or {})
    expander = _Expander(definitions, path)

    def patterns(key: str, flags: int = 0) -> tuple[CompiledPattern, ...]:
        compiled = []
        items = data.get(key, [])
        if not isinstance(items, list):
            raise GrammarError(f"{path}: [[{key}]] must be a list of tables")
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict) or not isinstance(item.get("match"), str):
                raise GrammarError(f"{path}: [[{key}]] number {i} needs a match string")
            pname = item.get("name", f"{key}-{i}")
            compiled.append(_compile(expander, pname, item["match"], f"{path}: {key} {pname!r}", flags))
        return tuple(compiled)

    main = patterns("pattern")
    if not main:
        raise GrammarError(f"{path}: at least one [[pattern]] is required")
    # A body is a whole message, newlines included (journald's MESSAGE): `.` must match them.
    body = patterns("body", re.DOTALL)
    if any("body" in p.fields for p in main) and not body:
        raise GrammarError(f"{path}: a pattern captures `body` but there is no [[body]] pattern")

    other = None
    if "other" in data:
        other_text = data["other"].get("match") if isinstance(data["other"], dict) else None
        if not isinstance(other_text, str):
            raise GrammarError(f"{path}: [other] needs a match string")
        other = _compile(expander, "other", other_text, f"{path}: other").regex

    json_keys: dict[str, tuple[str, str]] = {}
    base_json = _base(directory or path.parent).get("json", {})
    json_table = {**base_json, **data.get("json", {})}
    keys = {**base_json.get("keys", {}), **data.get("json", {}).get("keys", {})}
    for key, target in keys.items():
        fname, _, kind = str(target).partition(":")
        kind = kind or "str"
        if fname not in FIELDS and fname not in SPECIAL_FIELDS:
            raise GrammarError(f"{path}: [json.keys] {key!r} maps to unknown field {fname!r}")
        if kind not in TYPES:
            raise GrammarError(f"{path}: [json.keys] {key!r} has unknown type {kind!r}")
        json_keys[key] = (fname, kind)
    if not any("json" in p.fields for p in (*main, *body)):
        json_keys = {}

    return Grammar(
        name=name,
        path=str(path),
        description=description,
        produced_by=tuple(produced),
        multiline=multiline,
        patterns=main,
        other=other,
        body_patterns=body,
        json_keys=json_keys,
        json_key_prefixes=tuple(json_table.get("key_prefixes", [])),
        json_required=tuple(json_table.get("required", [])),
        priority=priority,
        options={k: v for k, v in head.items() if k not in {"name", "description", "produced_by", "multiline", "priority"}},
    )


_LOADED: dict[tuple[str, tuple[tuple[str, str], ...]], Grammar] = {}


def get_grammar(name: str, overrides: Mapping[str, str] | None = None) -> Grammar:
    """A compiled grammar by name, cached per set of overrides."""
    key = (name, tuple(sorted((overrides or {}).items())))
    grammar = _LOADED.get(key)
    if grammar is None:
        files = grammar_files()
        if name not in files:
            raise UnknownGrammar(f"unknown grammar {name!r}; known grammars are {', '.join(files)}")
        grammar = _LOADED[key] = load_grammar(files[name], overrides)
    return grammar


def all_grammars(overrides: Mapping[str, str] | None = None) -> list[Grammar]:
    return [get_grammar(name, overrides) for name in grammar_files()]


def lint(grammar: Grammar) -> Iterable[str]:
    """Style problems that compile but will hurt: numbered groups, missing message field."""
    for pattern in (*grammar.patterns, *grammar.body_patterns):
        numbered = pattern.regex.groups - len(pattern.regex.groupindex)
        if numbered:
            yield f"{grammar.name}: pattern {pattern.name!r} has {numbered} numbered group(s); use (?:...)"
        fields = set(pattern.fields)
        if not fields & {"message", "json", "body"}:
            yield f"{grammar.name}: pattern {pattern.name!r} captures no message, json nor body"
