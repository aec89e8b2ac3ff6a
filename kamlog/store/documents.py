"""Correlated events as stored documents: the JSON `correlate --format json` writes (SIP messages
with their raw text as `event.original`), each with a deterministic id.

The id is a hash of the source's identity and the event's place in it (byte offset in a log,
frame in a capture), so indexing the same inputs again adds nothing. A source's identity is its
first line (logs, decompressed) or first 512 bytes (captures), not its name or inode: a log
rotated to `kamailio.log.1.gz` is still the same source, and a file truncated and rewritten is
a new one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from hashlib import blake2b
from typing import NamedTuple

from orjson import dumps

from ..correlate.attribution import HEP, Placed
from ..correlate.inputs import open_decompressed
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..errors import SourceError
from ..events import LogEvent
from ..sip import SipMessage
from ..sip.document import DATASET as SIP_DATASET
from ..sinks.ecs import DATASET as LOG_DATASET
from ..sinks.timeline import hep_log_json, log_json, message_document

_CAPTURE_HEAD = 512
_LOG_HEAD = 1024


class Document(NamedTuple):
    id: str
    dataset: str  # event.dataset: which data stream it goes to
    ts_ns: int  # @timestamp
    call: str | None  # kamlog.call
    ord: int  # its place in its call's timeline
    source: str  # the JSON document


class Identities:
    """Each source file's identity, read once."""

    def __init__(self) -> None:
        self._known: dict[str, bytes] = {}
        self._files: dict[tuple[int, int], bytes] = {}

    def log(self, event: LogEvent) -> bytes:
        """A log event's source: by the (device, inode) it was read from when that file was
        identified (a live log and its rotated predecessor share a name), else by its path."""
        file_id = event.file_id
        known = self._files.get(file_id) if file_id is not None else None
        return known if known is not None else self(event.path, False)

    def set_file(self, file_id: tuple[int, int], first_line: bytes) -> None:
        """Identify the file (device, inode) by its first line (with its newline, as readline
        gives it), read by whoever holds it open: the same id as `kamlog index` gives later."""
        self._files[file_id] = blake2b(first_line[:_LOG_HEAD], digest_size=16).digest()

    def forget_file(self, file_id: tuple[int, int]) -> None:
        self._files.pop(file_id, None)

    def __call__(self, path: str, capture: bool) -> bytes:
        known = self._known.get(path)
        if known is None:
            known = self._known[path] = _identity(path, capture)
        return known

    def set(self, path: str, identity: bytes) -> None:
        """Give `path` this identity from now on, instead of the one read from the file: for
        `kamlog collect`, which knows which capture a reused name holds (tcpdump -W's ring
        rewrites sip.pcap0 in place) and whose events are numbered after the file was read, when
        reading its head again could see the next capture."""
        self._known[path] = identity


def _identity(path: str, capture: bool) -> bytes:
    try:
        with open_decompressed(path) as f:
            head = f.read(_CAPTURE_HEAD) if capture else f.readline(_LOG_HEAD)
    except (OSError, EOFError, ValueError) as exc:
        raise SourceError(f"cannot read {path} again to identify it: {exc}") from None
    return blake2b(head, digest_size=16).digest()


def event_id(identity: bytes, place: int) -> str:
    return blake2b(b"%s:%d" % (identity, place), digest_size=15).hexdigest()


class Documents:
    """Turns correlated calls and unattributed records into Documents. Events without any time
    of their own or of their call (an untimed log's unattributed lines) take `now_ns`, the time
    the run started: a data stream needs a `@timestamp`."""

    def __init__(self, now_ns: int | None = None, hostname: str | None = None) -> None:
        self.identities = Identities()
        self.now_ns = time.time_ns() if now_ns is None else now_ns
        # The node's name, on every event that does not carry one (SIP, stderr and JSON
        # logs): many nodes feed one cluster (`kamlog collect`).
        self.hostname = hostname
        self._host_field = "" if hostname is None else f',"host.hostname":{dumps(hostname).decode()}'

    def call(self, timeline: CallTimeline) -> Iterator[Document]:
        """The call's events; each also says the call's final state (`kamlog.call_state`, as the
        ladder's header: COMPLETED, BUSY 486, ...), so that Kibana can count and filter calls by it."""
        offset = timeline.skew.offset_ns
        call = timeline.call_id
        state = timeline.dialog.state_text if timeline.messages else None
        events = timeline.events()
        # Which timeline each document is of: a call seen by two nodes, or whose late lines came
        # after it was stored, has several, each in its own kamlog.sequence order (kamlog show).
        part = blake2b(b"%s\0%s\0%d" % ((self.hostname or "").encode(), call.encode(), events[0][0] if events else 0),
                       digest_size=8).hexdigest()
        extra = f',"kamlog.call_state":{dumps(state).decode()},"kamlog.timeline":"{part}"'
        for n, (at, _, event) in enumerate(events):
            if isinstance(event, SipMessage):
                yield self._message(event, timeline, at, n, state, part)
            else:
                yield self._log(event, at if event.ts_ns is None else event.ts_ns - offset, call, n, extra)

    def unattributed(self, placed: Placed, skew: Skew) -> Document:
        return self._log(placed, None if placed.ts_ns is None else placed.ts_ns - skew.offset_ns, None, 0, "")

    def _message(self, msg: SipMessage, timeline: CallTimeline, at: int, n: int, state: str | None,
                 part: str) -> Document:
        doc = message_document(msg, timeline)
        doc["event.original"] = msg.raw.decode("utf-8", "replace")
        payload = msg.payload
        ident = doc["event.id"] = event_id(self.identities(payload.file, True), payload.frame)
        doc["kamlog.sequence"] = n
        doc["kamlog.call_state"] = state
        doc["kamlog.timeline"] = part
        if self.hostname is not None:
            doc.setdefault("host.hostname", self.hostname)
        return Document(ident, SIP_DATASET, at, timeline.call_id, n, dumps(doc).decode())

    def _log(self, placed: Placed, at_ns: int | None, call: str | None, n: int, extra: str) -> Document:
        event = placed.event
        if at_ns is None:
            at_ns = self.now_ns
        if event.grammar == HEP:
            text = hep_log_json(placed, at_ns, call)
            # A capture's frame holds one HEP record; its log records are told apart from its
            # SIP message by the dataset.
            ident = event_id(self.identities(event.path, True) + b"log", event.offset)
        else:
            text = log_json(placed, at_ns, call)
            ident = event_id(self.identities.log(event), event.offset)
        # The id and the place in the call, added to the text without parsing it again.
        if not event.host:
            extra += self._host_field
        text = f'{text[:-1]},"event.id":"{ident}","kamlog.sequence":{n}{extra}}}'
        return Document(ident, LOG_DATASET, at_ns, call, n, text)
