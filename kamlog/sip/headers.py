"""SIP header section -> `Headers`: every header by name, case-insensitive, compact forms mapped
to their full names (RFC 3261 section 7.3.3 and later RFCs), repeated headers kept in order,
folded (continuation) lines unfolded."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Final

# Compact form -> full name, as SIP writes the full name (IANA's SIP parameters registry).
COMPACT_FORMS: Final[dict[str, str]] = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "v": "Via",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_COMPACT_KEYS: Final[dict[str, str]] = {short: full.lower() for short, full in COMPACT_FORMS.items()}


@lru_cache(maxsize=512)
def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms as their full name (cached:
    a document looks up the same few names in every message)."""
    key = name.strip().lower()
    return _COMPACT_KEYS.get(key, key)


class Headers:
    """The headers of one message, in order. Lookups ignore case and accept compact forms.

    `problems` lists what was wrong with the section (a line without a colon, bytes that are
    not UTF-8); such a line is left out, the rest kept."""

    __slots__ = ("_items", "_index", "problems")

    def __init__(self, section: bytes, offset: int = 0) -> None:
        """`section` is the header lines after the start line, without the empty line; `offset`
        is where it starts in the message (problems name offsets in the message)."""
        self.problems: list[str] = []
        if section.isascii():
            text = section.decode("ascii")
        else:
            try:
                text = section.decode("utf-8")
            except UnicodeDecodeError as error:
                self.problems.append(f"header bytes are not UTF-8 (byte 0x{section[error.start]:02x} at offset {offset + error.start})")
                text = section.decode("utf-8", "replace")
        if "\n " in text or "\n\t" in text:  # folded lines (rare): unfold them first
            lines: list[str] = []
            for line in text.split("\n"):
                if line.endswith("\r"):
                    line = line[:-1]
                if line[:1] in (" ", "\t") and lines:
                    lines[-1] = lines[-1] + " " + line.strip()
                elif line:
                    lines.append(line)
        else:
            lines = text.split("\n")  # each line's "\r" goes with the strip of its value
        items: list[tuple[str, str]] = []
        index: dict[str, list[str]] = {}
        compact = COMPACT_FORMS
        for line in lines:
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name:
                if not line.strip():
                    continue
                line = line.rstrip("\r")
                shown = line if len(line) <= 60 else line[:57] + "..."
                self.problems.append(f"header line {shown!r} has no colon" if not colon else f"header line {shown!r} has no name")
                continue
            key = name.lower()
            full = compact.get(key) if len(key) == 1 else None
            if full is not None:
                name, key = full, full.lower()
            value = value.strip()
            items.append((name, value))
            found = index.get(key)
            if found is None:
                index[key] = [value]
            else:
                found.append(value)
        self._items = items
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, or `default`."""
        found = self._index.get(header_key(name))
        return found[0] if found else default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, in order, one per header line (not split at commas)."""
        return list(self._index.get(header_key(name), ()))

    def get_list(self, name: str) -> list[str]:
        """Every comma-separated value of a header across its lines, in order (Via, Contact,
        Allow, Supported, ...)."""
        out: list[str] = []
        for value in self._index.get(header_key(name), ()):
            out.extend(split_commas(value))
        return out

    def __getitem__(self, name: str) -> str:
        found = self._index.get(header_key(name))
        if not found:
            raise KeyError(name)
        return found[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(name, value) in message order; compact names given as their full name."""
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_commas(value: str) -> list[str]:
    """A header value split at the commas that separate values (not those inside quotes,
    angle brackets or parentheses), each stripped; empty values dropped."""
    if "," not in value:
        return [value] if value else []
    return [part for part in (p.strip() for p in _split_outside(value, ",", brackets=True)) if part]


def _split_outside(text: str, sep: str, *, brackets: bool) -> list[str]:
    """`text` split at each `sep` outside double quotes (backslash escapes inside them) and,
    with `brackets`, outside <...> and (...)."""
    out: list[str] = []
    start = 0
    depth = 0
    quoted = False
    escaped = False
    for i, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif brackets and char in "<(":
            depth += 1
        elif brackets and char in ">)":
            depth = max(depth - 1, 0)
        elif char == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def parse_params(text: str) -> dict[str, str | None]:
    """`;name=value;flag` -> {"name": "value", "flag": None}; names lower-cased, quotes around
    a value removed, the first of a repeated name kept."""
    params: dict[str, str | None] = {}
    for part in _split_semicolons(text):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if not name or name in params:
            continue
        if equals:
            value = value.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            params[name] = value
        else:
            params[name] = None
    return params


def _split_semicolons(text: str) -> list[str]:
    return text.split(";") if '"' not in text else _split_outside(text, ";", brackets=False)
