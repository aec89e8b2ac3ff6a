"""`kamlog calls`: which dialogs to list (sngrep-like filters) and how the table looks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .capture.hep import HepLog
from .dialogs import Dialog
from .sip import SipMessage, rfc3339


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Keeps a dialog when it passes every filter given (an empty filter keeps all).

    Methods match the dialog's first method; `from_`/`to` are case-insensitive substrings of
    the From/To URI; Call-IDs match exactly."""

    methods: frozenset[str] = frozenset()
    from_: str | None = None
    to: str | None = None
    call_ids: frozenset[str] = frozenset()
    hide_options: bool = False

    @classmethod
    def build(cls, methods: Sequence[str] = (), from_: str | None = None, to: str | None = None,
              call_ids: Sequence[str] = (), hide_options: bool = False) -> CallFilter:
        return cls(frozenset(m.upper() for m in methods), from_.lower() if from_ else None,
                   to.lower() if to else None, frozenset(call_ids), hide_options)

    def __call__(self, dialog: Dialog) -> bool:
        if self.hide_options and dialog.first_method == "OPTIONS":
            return False
        if self.methods and dialog.first_method not in self.methods:
            return False
        if self.call_ids and dialog.call_id not in self.call_ids:
            return False
        if self.from_ and self.from_ not in (dialog.from_uri or "").lower():
            return False
        return not self.to or self.to in (dialog.to_uri or "").lower()

    def groups(self, groups: Iterable[list[Dialog]]) -> Iterator[list[Dialog]]:
        """Groups with at least one dialog kept; the group is shown whole (its linked legs too)."""
        for group in groups:
            if any(self(d) for d in group):
                yield group


_COLUMNS = ("START (UTC)", "DURATION", "METHOD", "FROM", "TO", "STATE", "MSGS", "RTX", "CALL-ID", "ENDPOINTS")


def clock_text(ts_ns: int, digits: int = 6) -> str:
    """`2026-11-28 10:15:13.383151` in UTC, with `digits` fraction digits: what the text views show."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + "." + f"{ns:09d}"[: max(digits, 1)]


def _row(dialog: Dialog, linked: bool) -> tuple[str, ...]:
    return (
        clock_text(dialog.start_ns),
        f"{dialog.duration_s:.3f}s",
        dialog.first_method or "-",
        dialog.from_uri or "-",
        dialog.to_uri or "-",
        dialog.state_text,
        str(dialog.messages),
        str(dialog.retransmissions),
        ("└ " if linked else "") + dialog.call_id,
        " ".join(dialog.endpoints),
    )


def calls_table(groups: Iterable[list[Dialog]]) -> Iterator[str]:
    """The text table: one line per dialog, a group's linked legs right under its first leg
    (marked `└`); the last column (endpoints) is not padded."""
    rows = [_row(d, i > 0) for group in groups for i, d in enumerate(group)]
    if not rows:
        return
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS) - 1)]
    right = {1, 6, 7}  # numbers line up on the right
    for row in [_COLUMNS, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        yield "  ".join([*cells, row[-1]]).rstrip()


def message_line(msg: SipMessage) -> str:
    """One SIP message as a line: time, source -> destination, transport, what it is, Call-ID."""
    p = msg.payload
    when = clock_text(p.ts_ns, p.digits)
    if msg.method is not None:
        what = f"{msg.method} {msg.request_uri}"
    else:
        what = f"{msg.status_code} {msg.reason} ({msg.cseq_method})"
    line = f"{when}  {p.src_ip}:{p.src_port} -> {p.dst_ip}:{p.dst_port}  {p.transport}  {what}  {msg.call_id}"
    error = msg.error
    return line + f"  [error: {error}]" if error else line


def hep_log_line(log: HepLog) -> str:
    """A HEP log record (Kamailio's hlog()) as a line: time, sender, the Call-ID it names, text."""
    when = clock_text(log.ts_ns)
    return f"{when}  {log.src_ip}:{log.src_port}  log  {log.message}  {log.correlation_id}"


def hep_log_document(log: HepLog) -> dict[str, object]:
    """A HEP log record as a log event: ECS names, the correlation id as the Call-ID."""
    return {
        "@timestamp": rfc3339(log.ts_ns, 6),
        "event.dataset": "kamailio.log",
        "message": log.message,
        "sip.call_id": log.correlation_id or None,
        "source.ip": log.src_ip,
        "source.port": log.src_port,
        "agent.id": str(log.capture_id),
        "kamlog.capture.file": log.file,
        "kamlog.capture.frame": log.frame,
        "kamlog.capture.via": "hep",
    }


class RecordPrinter:
    """SIP messages and HEP log records as the bytes of one output line each (text or JSON),
    or None for a record the Call-ID filter leaves out."""

    def __init__(self, fmt: str, call_ids: Iterable[str] = ()) -> None:
        import orjson

        from .sip import sip_document

        self.wanted = frozenset(call_ids)
        self.json = fmt == "json"
        self._dumps = orjson.dumps
        self._document = sip_document

    def __call__(self, record: SipMessage | HepLog) -> bytes | None:
        if isinstance(record, HepLog):
            if self.wanted and record.correlation_id not in self.wanted:
                return None
            return self._dumps(hep_log_document(record)) if self.json else hep_log_line(record).encode()
        if self.wanted and record.call_id not in self.wanted:
            return None
        return self._dumps(self._document(record)) if self.json else message_line(record).encode()
