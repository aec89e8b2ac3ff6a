"""Picks the grammar that fits a log: the one that parses most of its first lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .grammar import Grammar
from .logline import LineParser
from .programs import ProgramFilter

SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 400


@dataclass(frozen=True, slots=True)
class Verdict:
    grammar: Grammar
    score: float
    records: int
    lines: int


def sample_lines(data: bytes) -> bytes:
    """The complete lines at the start of `data`, at most SAMPLE_LINES of them."""
    data = data[:SAMPLE_BYTES]
    cut = data.rfind(b"\n")
    if cut >= 0 and len(data) == SAMPLE_BYTES:
        data = data[: cut + 1]
    lines = data.split(b"\n", SAMPLE_LINES)
    return b"\n".join(lines[:SAMPLE_LINES])


def rank(sample: bytes, grammars: Sequence[Grammar], programs: ProgramFilter | None = None) -> list[Verdict]:
    """Every grammar's score on the sample, best first. A Kamailio record counts 1; a line of
    another program in a syslog file counts 1/2, so that /var/log/syslog is recognised before
    Kamailio has written to it."""
    verdicts = []
    for grammar in grammars:
        parser = LineParser(grammar, "<sample>", programs=programs)
        events = [*parser.feed(sample, 0), *parser.flush()]
        stats = parser.stats
        parsed = sum(1 for e in events if e.error is None and (e.level is not None or e.timestamp is not None))
        score = parsed + 0.5 * stats.other_program
        verdicts.append(Verdict(grammar, score, parsed, stats.lines))
    verdicts.sort(key=lambda v: (v.score, v.grammar.priority), reverse=True)
    return verdicts


def detect(sample: bytes, grammars: Sequence[Grammar], programs: ProgramFilter | None = None) -> Grammar | None:
    """The best grammar for the sample, or None when no grammar parses any of it."""
    verdicts = rank(sample_lines(sample), grammars, programs)
    if not verdicts or verdicts[0].score <= 0:
        return None
    return verdicts[0].grammar
