"""Finds the Call-ID of a log record that does not carry it in a field of its own.

In order: the user's own log_prefix pattern (`--prefix-pattern`, a regex with a `call_id` group,
optionally `cseq_num`, `cseq_method`, `msg_type`), then Kamailio's default prefix
`{$mt $hdr(CSeq) $ci}`, then the ways xlog lines commonly print it (`ci=...`, `callid=...`,
`Call-ID: ...`, `ID=...`).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from ..errors import UsageError

# Kamailio 6.1 prints this where no SIP message is being processed: it means "no Call-ID".
NO_CALL_ID: Final = "aaa-bbb-ccc-ddd"

DEFAULT_PREFIX: Final = re.compile(
    r"\{(?P<msg_type>\d+) (?P<cseq_num>\d+) (?P<cseq_method>[A-Za-z]+) (?P<call_id>[^\s}]+)\}"
)
_IN_TEXT: Final = re.compile(
    r"(?:\b(?:ci|callid|call_id|call-id|Call-ID|Call-Id|CallID)\s*[=:]\s*\[?|\bID=)"
    r"(?P<call_id>[^\s,;'\[\]\)>]+)"
)
_PREFIX_FIELDS: Final = ("call_id", "cseq_num", "cseq_method", "msg_type")


def real_call_id(value: str | None) -> str | None:
    """None for an empty or placeholder Call-ID."""
    if not value or value == NO_CALL_ID or value == "<null>":
        return None
    return value


class PrefixFields(NamedTuple):
    call_id: str | None = None
    cseq_num: int | None = None
    cseq_method: str | None = None
    msg_type: int | None = None


class CallIdFinder:
    """Compiled once per source; `prefix_fields()` and `in_text()` run per record, on demand."""

    def __init__(self, prefix_pattern: str | None = None) -> None:
        self.prefix_pattern: re.Pattern[str] | None = None
        if prefix_pattern:
            try:
                self.prefix_pattern = re.compile(prefix_pattern)
            except re.error as exc:
                raise UsageError(f"--prefix-pattern {prefix_pattern!r} is not a valid regular expression: {exc}") from None
            if not set(self.prefix_pattern.groupindex) & set(_PREFIX_FIELDS):
                raise UsageError(
                    f"--prefix-pattern {prefix_pattern!r} has no named group among {', '.join(_PREFIX_FIELDS)}"
                )
        self._cache: dict[str, PrefixFields] = {}

    def prefix_fields(self, prefix: str | None) -> PrefixFields:
        """Call-ID, CSeq and message type from an evaluated log_prefix (cached: the lines of
        one transaction share their prefix)."""
        if not prefix:
            return _EMPTY
        found = self._cache.get(prefix)
        if found is None:
            found = self._parse_prefix(prefix)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[prefix] = found
        return found

    def _parse_prefix(self, prefix: str) -> PrefixFields:
        if self.prefix_pattern is not None:
            m = self.prefix_pattern.search(prefix)
            if m is not None:
                groups = m.groupdict()
                return PrefixFields(
                    real_call_id(groups.get("call_id")),
                    _int(groups.get("cseq_num")),
                    groups.get("cseq_method") or None,
                    _int(groups.get("msg_type")),
                )
        m = DEFAULT_PREFIX.search(prefix)
        if m is None:
            return _EMPTY
        msg_type, cseq_num, cseq_method, call_id = m.groups()
        return PrefixFields(real_call_id(call_id), int(cseq_num), cseq_method, int(msg_type))

    @staticmethod
    def in_text(message: str | None) -> str | None:
        """The Call-ID an xlog text carries, if it says so in a common way."""
        if not message:
            return None
        # The regex has no literal to scan for; most messages mention no Call-ID, and these
        # substring tests reject them about ten times faster than the search would.
        low = message.lower()
        if not ("ci=" in low or "ci:" in low or "id=" in low or "callid" in low or "call-id" in low or "call_id" in low):
            return None
        m = _IN_TEXT.search(message)
        # "ci=abc@host:" ends a sentence; a Call-ID itself does not end in punctuation.
        return real_call_id(m.group("call_id").rstrip(".:")) if m else None

    def find(self, prefix: str | None, message: str | None) -> str | None:
        return self.prefix_fields(prefix).call_id or self.in_text(message)


_EMPTY: Final = PrefixFields()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
