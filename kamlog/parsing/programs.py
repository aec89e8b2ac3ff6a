"""Which syslog tags are Kamailio's, as a regex for the grammars and as a check for JSON tags."""

from __future__ import annotations

import re
from typing import Iterable


class ProgramFilter:
    """Which syslog tags are Kamailio's: by default any whose name contains `kamailio`
    (kamailio, /usr/sbin/kamailio, kamailio-lb); `--program NAME` gives the names instead."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = frozenset(names)
        self.known: dict[str, bool] = {}

    def regex(self) -> str:
        """The same choice as a regex, for the grammars' PROGRAM definition."""
        if self.names:
            alternatives = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
            return rf"(?:[^\s\[:]*/)?(?:{alternatives})(?![^\s\[:])"
        return r"(?:[^\s\[:/]*+/)*+[^\s\[:/]*?kamailio[^\s\[:/]*+"

    def learn(self, program: str) -> bool:
        base = program.rsplit("/", 1)[-1]
        if self.names:
            ok = program in self.names or base in self.names
        else:
            ok = "kamailio" in base
        if len(self.known) < 10_000:
            self.known[program] = ok
        return ok

    def allows(self, program: str | None) -> bool:
        if program is None:
            return True
        ok = self.known.get(program)
        return self.learn(program) if ok is None else ok
