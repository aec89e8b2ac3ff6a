"""Which events a user asked to see: by level, Call-ID, module and text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UsageError
from .events import LogEvent


@dataclass(frozen=True, slots=True)
class EventFilter:
    max_level: int | None = None  # show this level and the more severe ones (lower numbers)
    call_ids: frozenset[str] = frozenset()
    modules: frozenset[str] = frozenset()
    grep: re.Pattern[str] | None = field(default=None)

    @classmethod
    def build(
        cls,
        max_level: int | None = None,
        call_ids: tuple[str, ...] = (),
        modules: tuple[str, ...] = (),
        grep: str | None = None,
    ) -> EventFilter:
        pattern = None
        if grep is not None:
            try:
                pattern = re.compile(grep)
            except re.error as exc:
                raise UsageError(f"--grep {grep!r} is not a valid regular expression: {exc}") from None
        return cls(max_level, frozenset(call_ids), frozenset(m.strip("<>") for m in modules), pattern)

    @property
    def passes_all(self) -> bool:
        return self.max_level is None and not self.call_ids and not self.modules and self.grep is None

    def __call__(self, event: LogEvent) -> bool:
        if self.max_level is not None:
            level = event.level_no
            if level is None or level > self.max_level:
                return False
        if self.call_ids and event.call_id not in self.call_ids:
            return False
        if self.modules and event.module not in self.modules:
            return False
        if self.grep is not None:
            text = event.message or ""
            if event.log_prefix:
                text = event.log_prefix + text
            if self.grep.search(text) is None:
                return False
        return True
