"""The records that flow through kamlog: LogEvent (one Kamailio log record) and its Origin.

A LogEvent is immutable. On the parsing hot path it is built from the raw strings a compiled
grammar captured, and each field is decoded when it is first read (a tuple plus a shared
`Decoder`): building a frozen dataclass per line costs more than matching the line itself, and
most filters read one or two fields. `LogEvent.create()` builds one from ready values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Final, Protocol

@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event's first byte is: a file and byte offset (logs) or a capture and frame."""

    path: str
    offset: int | None = None
    frame: int | None = None


# The fields of a log event, in the order of LogEvent.create's canonical values tuple.
FIELDS: Final[tuple[str, ...]] = (
    "timestamp",  # aware datetime, or None when the line carries none
    "host",
    "program",  # syslog tag (kamailio, /usr/sbin/kamailio)
    "pid",
    "process_no",  # Kamailio's process index (stderr `N(PID)`, JSON `idx`)
    "level",  # Kamailio's level name as printed ("" for L_CRIT)
    "level_no",  # -5 (ALERT) .. 3 (DEBUG)
    "module",  # core, script, tm, ...
    "src_file",
    "src_line",
    "function",
    "log_prefix",  # the evaluated log_prefix, as printed
    "message",
    "call_id",
    "cseq_num",
    "cseq_method",
    "msg_type",  # $mt of the default prefix: 1 request, 2 reply
    "error",  # why the record could not be (fully) parsed; the raw text is then the message
)


class Decoder(Protocol):
    """Turns the raw values of one grammar pattern into typed fields; shared by many events.

    Besides these members, a decoder has one callable attribute per name in FIELDS, taking the
    raw values and returning that field (what LogEvent's properties call)."""

    path: str
    grammar: str
    file_id: tuple[int, int] | None  # (device, inode) of the file, when read from one

    def decode_all(self, raw: Any) -> tuple[Any, ...]:
        """Every field, in FIELDS order: one call where a sink needs them all."""
        ...

    def start(self, raw: Any) -> int:
        """Where the record starts in the text it was parsed from (added to the event's base)."""
        ...


class _Canonical:
    """Decoder for values already in FIELDS order and already typed."""

    def __init__(self, path: str, grammar: str, file_id: tuple[int, int] | None) -> None:
        self.path = path
        self.grammar = grammar
        self.file_id = file_id

    @staticmethod
    def decode_all(raw: Any) -> tuple[Any, ...]:
        return raw  # type: ignore[no-any-return]

    @staticmethod
    def start(raw: Any) -> int:
        return 0


for _index, _name in enumerate(FIELDS):
    setattr(_Canonical, _name, staticmethod(itemgetter(_index)))


def _field(name: str) -> property:
    """A property that asks the event's decoder for one field: `self[1].NAME(self[0])`.

    Written out and compiled (as namedtuple does) because this runs for every field read, and
    a getattr by name or a dict lookup would double its cost."""
    namespace: dict[str, Any] = {}
    exec(f"def {name}(self):\n    return self[1].{name}(self[0])", namespace)
    return property(namespace[name])


class LogEvent(tuple):  # type: ignore[type-arg]
    """One Kamailio log record: (raw values or re.Match, decoder, base offset).

    The record's byte offset is the base plus where the match starts: a block parsed in one
    `finditer` shares its base. Such an event holds on to its block's text (up to 1 MiB): to
    keep many events for long, keep `event.detached()`."""

    __slots__ = ()

    timestamp: datetime | None = _field("timestamp")  # type: ignore[assignment]
    host: str | None = _field("host")  # type: ignore[assignment]
    program: str | None = _field("program")  # type: ignore[assignment]
    pid: int | None = _field("pid")  # type: ignore[assignment]
    process_no: int | None = _field("process_no")  # type: ignore[assignment]
    level: str | None = _field("level")  # type: ignore[assignment]
    level_no: int | None = _field("level_no")  # type: ignore[assignment]
    module: str | None = _field("module")  # type: ignore[assignment]
    src_file: str | None = _field("src_file")  # type: ignore[assignment]
    src_line: int | None = _field("src_line")  # type: ignore[assignment]
    function: str | None = _field("function")  # type: ignore[assignment]
    log_prefix: str | None = _field("log_prefix")  # type: ignore[assignment]
    message: str = _field("message")  # type: ignore[assignment]
    call_id: str | None = _field("call_id")  # type: ignore[assignment]
    cseq_num: int | None = _field("cseq_num")  # type: ignore[assignment]
    cseq_method: str | None = _field("cseq_method")  # type: ignore[assignment]
    msg_type: int | None = _field("msg_type")  # type: ignore[assignment]
    error: str | None = _field("error")  # type: ignore[assignment]

    @property
    def path(self) -> str:
        return self[1].path  # type: ignore[no-any-return]

    @property
    def offset(self) -> int:
        """Byte offset of the record's first byte in its file."""
        return self[2] + self[1].start(self[0])  # type: ignore[no-any-return]

    @property
    def grammar(self) -> str:
        return self[1].grammar  # type: ignore[no-any-return]

    @property
    def file_id(self) -> tuple[int, int] | None:
        """(device, inode) of the file the record was read from: after a rotation renamed it,
        `path` is the name it was opened by, and this still finds the bytes at `offset`."""
        return self[1].file_id  # type: ignore[no-any-return]

    @property
    def origin(self) -> Origin:
        return Origin(self.path, self.offset)

    @property
    def parsed(self) -> bool:
        return self.error is None

    def values(self) -> tuple[Any, ...]:
        """Every field, decoded, in FIELDS order (cheaper than reading them one by one)."""
        return self[1].decode_all(self[0])  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, Any]:
        """Every field, decoded, plus path, offset and grammar."""
        values = dict(zip(FIELDS, self.values()))
        values.update(path=self.path, offset=self.offset, grammar=self.grammar)
        return values

    def detached(self) -> LogEvent:
        """The same record holding only its own decoded values, not the text it was parsed from."""
        if isinstance(self[0], tuple):
            return self
        return LogEvent.from_values(self.values(), self.path, self.grammar, self.file_id, self.offset)

    def replace(self, **changes: Any) -> LogEvent:
        """A copy with some fields changed (slow path: continuation lines, enrichment)."""
        values = dict(zip(FIELDS, self.values()))
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"LogEvent has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return LogEvent.create(path=self.path, offset=self.offset, grammar=self.grammar, file_id=self.file_id, **values)

    @classmethod
    def create(
        cls,
        *,
        path: str = "",
        offset: int = 0,
        grammar: str = "",
        file_id: tuple[int, int] | None = None,
        **fields: Any,
    ) -> LogEvent:
        """Build an event from ready values (sources without a grammar, tests)."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TypeError(f"LogEvent has no field {sorted(unknown)[0]!r}")
        fields.setdefault("message", "")
        return cls.from_values(tuple(fields.get(name) for name in FIELDS), path, grammar, file_id, offset)

    @classmethod
    def from_values(
        cls, values: tuple[Any, ...], path: str, grammar: str, file_id: tuple[int, int] | None, offset: int
    ) -> LogEvent:
        """From typed values in FIELDS order, unchecked (the parser's structured records)."""
        return tuple.__new__(cls, (values, _decoder_for(path, grammar, file_id), offset))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogEvent):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self.path, self.offset, self.message))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v is not None)
        return f"LogEvent({shown})"


_CANONICAL: dict[tuple[str, str, tuple[int, int] | None], _Canonical] = {}


def _decoder_for(path: str, grammar: str, file_id: tuple[int, int] | None) -> _Canonical:
    key = (path, grammar, file_id)
    decoder = _CANONICAL.get(key)
    if decoder is None:
        if len(_CANONICAL) > 10_000:
            _CANONICAL.clear()
        decoder = _CANONICAL[key] = _Canonical(path, grammar, file_id)
    return decoder
