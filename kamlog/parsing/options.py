"""How the user wants a source parsed: which grammar, which syslog tags, year and zone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..correlate.clock import Clock
from .callid import CallIdFinder
from .detect import detect, sample_lines
from .grammar import Grammar, all_grammars, get_grammar, grammar_files
from .logline import LineParser
from .programs import ProgramFilter
from ..errors import SourceError


@dataclass(frozen=True)
class ParseOptions:
    grammar: str | None = None  # None: detect per file
    programs: tuple[str, ...] = ()  # syslog tags that are Kamailio's; empty: any `*kamailio*`
    year: int | None = None
    tz: str | None = None
    prefix_pattern: str | None = None

    @cached_property
    def _callids(self) -> CallIdFinder:
        return CallIdFinder(self.prefix_pattern)

    def callids(self) -> CallIdFinder:
        """One finder (and its prefix cache) for every file read with these options."""
        return self._callids

    def program_filter(self) -> ProgramFilter:
        return ProgramFilter(self.programs)

    def overrides(self) -> dict[str, str]:
        """Definitions that depend on the options: which syslog tags are Kamailio's."""
        return {"PROGRAM": self.program_filter().regex()}

    def validate(self) -> None:
        """Raise the user's mistakes (unknown grammar, bad regex, bad zone) before reading."""
        if self.grammar is not None:
            get_grammar(self.grammar, self.overrides())
        self.callids()
        Clock.for_file(None, self.year, self.tz)

    def grammars(self) -> list[Grammar]:
        return all_grammars(self.overrides())

    def grammar_for(self, path: str, sample: bytes) -> Grammar:
        if self.grammar is not None:
            return get_grammar(self.grammar, self.overrides())
        found = detect(sample, self.grammars(), self.program_filter())
        if found is None:
            first = sample_lines(sample).split(b"\n", 1)[0][:120].decode("utf-8", "replace")
            raise SourceError(
                f"cannot tell the log format of {path}: no grammar parses its first lines "
                f"(the first is {first!r}); name one with --grammar ({', '.join(grammar_files())})"
            )
        return found

    def parser(self, grammar: Grammar, path: str, file_id: tuple[int, int] | None = None) -> LineParser:
        return LineParser(
            grammar,
            path,
            clock=Clock.for_file(path, self.year, self.tz),
            callids=self.callids(),
            programs=self.program_filter(),
            file_id=file_id,
        )


def uses_rfc3164(grammar: Grammar) -> bool:
    """Whether the grammar's timestamps lack year and zone (so a Clock has to guess them)."""
    return any(kind == "rfc3164" for p in grammar.patterns for _, kind in p.fields.values())
