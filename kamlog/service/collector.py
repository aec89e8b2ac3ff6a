"""The collector: the service's one loop. Log tailers and the HEP listener feed a bounded queue
from their threads; this loop correlates what arrives, takes rotated captures as they close,
finishes the calls that went quiet, stores them, and only then advances the registry.

Time: a call is finished when nothing of it arrived for `call_timeout`, measured against a
watermark, the time up to which every source is known to be complete: now for logs and HEP,
the first packet of the oldest capture not yet taken for a capture directory (its packets
are still to come)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from queue import Empty, Queue
from typing import TYPE_CHECKING, Any, Protocol

from ..capture.hep import HepLog
from ..correlate.attribution import HEP, Placed
from ..correlate.skew import NO_SKEW
from ..correlate.timeline import CallTimeline, Correlator
from ..errors import KamlogError, SinkFull
from ..events import LogEvent
from ..sip import SipMessage, parse_sip
from ..store.documents import Document, Documents
from ..tail.registry import Registry
from .acks import Acks
from .config import ServiceConfig
from .logs import LogBatch, LogTailer
from .watermark import CaptureWatermark

if TYPE_CHECKING:
    from ..sources.capture_dir import CaptureDirectory, ClosedCapture
    from ..sources.hep import HepListener

log = logging.getLogger("kamlog.collect")
TICK = 0.5  # seconds between two looks at the captures, the calls and the registry
PUT = 2000  # documents per hand-over to a sink: a spool fills by this much at most past its bound


@dataclass(slots=True)
class EventBatch:
    """Log records from a source that is not a file (journald, a syslog listener). `source`,
    when given, is told once they are stored (journald then advances its cursor)."""

    events: list[LogEvent]
    source: Acking | None = None


class Acking(Protocol):
    def stored(self, events: list[LogEvent]) -> None:
        """These records of yours are in every sink."""

    def commit(self) -> None:
        """Write down how far you are done (called after every store)."""


class EventSource(Protocol):
    """A source in its own thread that puts EventBatch items into the collector's queue, and
    None when it ends (after stop(), or on an error it keeps in `error`)."""

    error: str | None

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Sink(Protocol):
    name: str

    def put(self, documents: list[Document]) -> None:
        """Durable when it returns."""

    def has_room(self) -> bool: ...

    def counters(self) -> dict[str, Any]: ...

    def close(self, drain_timeout: float) -> None: ...


@dataclass(slots=True)
class Counters:
    lines: int = 0  # log records read
    parsed: int = 0  # of which a grammar's pattern matched
    unparsed: int = 0  # of which matched no pattern (kept raw, with error.message)
    packets: int = 0  # SIP messages (and HEP log records) from captures and HEP
    captures_taken: int = 0
    calls_open: int = 0
    calls_closed: int = 0
    unattributed: int = 0
    events_stored: int = 0
    batches: int = 0
    waiting: int = 0  # records read, not yet stored
    paused: int = 0  # times reading was paused because a sink was full

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _Batch:
    docs: list[Document]
    events: list[LogEvent]  # the log records among them (their files' registry waits for them)
    captures: list[str]  # the capture of each message among them
    done: int = 0  # how many of docs every sink has taken


class Collector:
    """Runs the configured sources into the configured sinks until `stop()`."""

    def __init__(self, config: ServiceConfig, sinks: list[Sink], captures: list[CaptureDirectory] | None = None,
                 hep: HepListener | None = None, sources: list[EventSource] | None = None) -> None:
        self.config = config
        self.sinks = sinks
        self.captures = captures or []
        self.hep = hep
        os.makedirs(config.state_dir, exist_ok=True)
        self.registry = Registry(config.registry_path)
        self.acks = Acks(self.registry)
        self.queue: Queue[Any] = Queue(maxsize=8)  # batches of up to 1 MiB of lines each
        self.tailers = [LogTailer(source, self.registry, self.queue) for source in config.logs]
        self.sources: list[EventSource] = sources or []
        self._acking: dict[str, Acking] = {}  # event path -> the source to tell when stored
        # The skew between the log's and the captures' clocks is estimated from the first calls,
        # which wait for it: 20 rather than a batch run's 200, so that storing starts early.
        self.correlator = Correlator(idle_ns=int(config.call_timeout * 1e9), skew_calls=20)
        if not (config.captures or config.hep):
            self.correlator.skew = NO_SKEW  # no capture clock to compare the log's with
        self.documents = Documents(hostname=config.node)
        self.counters = Counters()
        self.state = "starting"
        self.started = time.time()
        self._stop = threading.Event()
        self._paused_for: str | None = None  # why reading is paused: "sink" (full), "waiting"
        self._backlog: list[_Batch] = []  # not yet taken by every sink
        self._hep_thread: threading.Thread | None = None
        self.watermarks = {id(d): CaptureWatermark(d.pattern, d.closed_after) for d in self.captures}
        # Read, waiting for their messages to be stored.
        self._pending_captures: list[tuple[CaptureDirectory, ClosedCapture]] = []

    # -- life -----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Until stop(): read, correlate, store; then drain everything read and return."""
        for tailer in self.tailers:
            tailer.start()
        for source in self.sources:
            source.start()
        if self.hep is not None:
            self._hep_thread = threading.Thread(target=self._receive_hep, name="kamlog-hep", daemon=True)
            self._hep_thread.start()
        self.state = "running"
        log.info("collecting: %s", self.describe())
        next_tick = 0.0
        next_stats = time.monotonic() + self.config.stats_interval
        while not self._stop.is_set():
            sink_full = self._check_room()
            if self._paused_for is not None:
                self._stop.wait(TICK)
            else:
                self._take(timeout=TICK / 2)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK
                # Captures are taken even while too many records wait: their packets are what
                # lets the open calls finish (the watermark).
                if not sink_full:
                    self._take_captures()
                self._expire()
                self._commit()
            if self.config.stats_interval and now >= next_stats:
                next_stats = now + self.config.stats_interval
                log.info("%s", self.stats_line())
        self._drain()

    def _drain(self) -> None:
        """Stop reading, store everything read (open calls are finished as they are), commit."""
        self.state = "draining"
        for tailer in self.tailers:
            tailer.stop()
        for source in self.sources:
            source.stop()
        running = len(self.tailers) + len(self.sources)
        deadline = time.monotonic() + 10
        while running and time.monotonic() < deadline:
            try:
                item = self.queue.get(timeout=0.2)
            except Empty:
                continue
            if item is None:
                running -= 1
            else:
                self._handle(item)
        if self._hep_thread is not None:
            self._hep_thread.join(2)
            self._take(timeout=0)
            assert self.hep is not None
            self.hep.close()
        self._write(self.correlator.finish())
        deadline = time.monotonic() + 10
        while self._backlog and time.monotonic() < deadline:
            time.sleep(0.2)
            self._store()
        if self._backlog:
            log.warning("%d records could not be handed to a full sink; they are read again at the next start",
                        sum(len(batch.events) for batch in self._backlog))
        self._commit()
        for sink in self.sinks:
            sink.close(drain_timeout=10)
        self.state = "stopped"
        log.info("stopped: %s", self.stats_line())

    # -- reading --------------------------------------------------------------------------

    def _check_room(self) -> bool:
        """Whether a sink is full; reading pauses then, or while more than max_waiting records
        wait to be stored (memory), and says so once."""
        if self._backlog:
            self._store()
        sink_full = bool(self._backlog) or not all(sink.has_room() for sink in self.sinks)
        reason = "sink" if sink_full else "waiting" if self.counters.waiting > self.config.max_waiting else None
        if reason is not None and reason != self._paused_for:
            self.counters.paused += 1
            if reason == "waiting":
                log.warning("%d records read are not yet stored (max_waiting): reading is paused until "
                            "fewer are; nothing is dropped", self.counters.waiting)
            else:
                log.warning("a sink is full (%s): reading is paused until it has room again; nothing is dropped",
                            ", ".join(s.name for s in self.sinks if not s.has_room()) or "its spool")
        elif reason is None and self._paused_for is not None:
            log.info("reading resumes")
        self._paused_for = reason
        return sink_full

    def _take(self, timeout: float) -> None:
        try:
            item = self.queue.get(timeout=timeout)
        except Empty:
            return
        for _ in range(256):
            if item is not None:
                self._handle(item)
            if self.counters.waiting > self.config.max_waiting:
                return
            try:
                item = self.queue.get_nowait()
            except Empty:
                return

    def _handle(self, item: LogBatch | EventBatch | list[Any]) -> None:
        if isinstance(item, LogBatch):
            if item.first_line is not None:
                self.documents.identities.set_file(item.identity.key, item.first_line)
            self.acks.read(item.identity, item.path, item.events, item.frontier)
            self._add_logs(item.events)
        elif isinstance(item, EventBatch):
            if item.source is not None:
                for path in {e.path for e in item.events}:
                    self._acking[path] = item.source
            self._add_logs(item.events)
        else:  # records from the HEP listener
            self.counters.packets += len(item)
            self.counters.waiting += _on_calls(item)
            self._write(self.correlator.add(records=item))

    def _add_logs(self, events: list[LogEvent]) -> None:
        unparsed = sum(1 for e in events if e.error)
        self.counters.lines += len(events)
        self.counters.parsed += len(events) - unparsed
        self.counters.unparsed += unparsed
        self.counters.waiting += len(events)
        self._write(self.correlator.add(logs=events))

    def _receive_hep(self) -> None:
        listener = self.hep
        assert listener is not None
        while not self._stop.is_set():
            records = []
            for record in listener.receive(0.5):
                parsed = record if isinstance(record, HepLog) else parse_sip(record)
                if parsed is not None:
                    records.append(parsed)
            if records:
                self.queue.put(records)

    def _take_captures(self) -> None:
        """Read the captures closed since the last look, oldest first; past max_waiting, one
        per look (each one lets calls finish, so the waiting records go down)."""
        for directory in self.captures:
            offered = directory.poll()
            for n, capture in enumerate(offered):
                if self._stop.is_set() or (n and self.counters.waiting > self.config.max_waiting):
                    for later in offered[n:]:
                        directory.release(later)  # offered again at the next look
                    break
                self._read_capture(directory, capture)

    def _read_capture(self, directory: CaptureDirectory, capture: ClosedCapture) -> None:
        from ..sources.capture_dir import CaptureGone, capture_reader

        try:
            reader = capture_reader(capture, self.documents.identities)
        except CaptureGone as exc:
            log.warning("%s", exc)
            directory.release(capture)
            return
        records: list[SipMessage | HepLog] = []
        try:
            records.extend(reader.records())
        except KamlogError as exc:  # a damaged capture: what came before the damage is kept
            log.error("%s", exc)
        for note in reader.notes():
            log.info("%s: %s", capture.path, note)
        self.watermarks[id(directory)].was_read(capture.key, capture.size)
        on_calls = _on_calls(records)
        self.acks.capture_read(capture.path, on_calls)
        self.counters.waiting += on_calls
        self.counters.packets += len(records)
        self.counters.captures_taken += 1
        log.info("%s: taken, %d SIP messages and HEP log records", capture.path, len(records))
        self._write(self.correlator.add(records=records))
        self._pending_captures.append((directory, capture))

    # -- finishing and storing ------------------------------------------------------------

    def watermark_ns(self) -> int:
        """The time up to which every source is complete (see the module's docstring)."""
        now = time.time_ns()
        return min((mark(now) for mark in self.watermarks.values()), default=now)

    def _expire(self) -> None:
        cutoff = self.watermark_ns() - self.correlator.idle_ns
        self._write(self.correlator.expire(cutoff))
        self.counters.calls_open = len({id(t) for t in self.correlator.open.values()})
        done = []
        for directory, capture in self._pending_captures:
            if self.acks.capture_done(capture.path):
                directory.taken(capture)
                done.append((directory, capture))
        for item in done:
            self._pending_captures.remove(item)

    def _write(self, items: Iterable[CallTimeline | Placed]) -> None:
        docs: list[Document] = []
        events: list[LogEvent] = []
        captures: list[str] = []
        documents = self.documents
        for item in items:
            if isinstance(item, CallTimeline):
                self.counters.calls_closed += 1
                docs.extend(documents.call(item))
                events.extend(p.event for p in item.logs)
                captures.extend(m.payload.file for m in item.messages)
            else:
                self.counters.unattributed += 1
                docs.append(documents.unattributed(item, self.correlator.skew or NO_SKEW))
                events.append(item.event)
        if not docs:
            return
        captures.extend(e.path for e in events if e.grammar == HEP)
        self._backlog.append(_Batch(docs, events, captures))
        self._store()

    def _store(self) -> None:
        """Hand the batches to every sink, oldest first, in parts of PUT documents; a part a
        sink cannot take now (its spool is full) waits here with what follows it, and reading
        pauses until it is taken (see _check_room)."""
        while self._backlog:
            batch = self._backlog[0]
            docs = batch.docs
            while batch.done < len(docs):
                part = docs[batch.done:batch.done + PUT]
                try:
                    for sink in self.sinks:
                        # A sink that took this part already keeps it once: the ids are the same.
                        sink.put(part)
                except SinkFull:
                    return
                batch.done += len(part)
            self._backlog.pop(0)
            self._stored(docs, batch.events, batch.captures)

    def _stored(self, docs: list[Document], events: list[LogEvent], captures: list[str]) -> None:
        self.acks.stored(events, captures)
        if self._acking:
            by_source: dict[int, tuple[Acking, list[LogEvent]]] = {}
            for event in events:
                source = self._acking.get(event.path)
                if source is not None:
                    by_source.setdefault(id(source), (source, []))[1].append(event)
            for source, mine in by_source.values():
                source.stored(mine)
        self.counters.events_stored += len(docs)
        self.counters.waiting -= len(docs)
        self.counters.batches += 1

    # -- telling ---------------------------------------------------------------------------

    def describe(self) -> str:
        parts = [f"logs {', '.join(p for s in self.config.logs for p in s.paths)}"] if self.config.logs else []
        parts += [f"captures {c.pattern}" for c in self.config.captures]
        if self.config.hep is not None:
            parts.append(f"HEP on udp {self.config.hep.host}:{self.config.hep.port}")
        if self.config.journald is not None:
            parts.append(f"the journal{' in ' + self.config.journald.directory if self.config.journald.directory else ''}")
        if self.config.syslog is not None:
            parts.append(f"syslog on {self.config.syslog.transport} {self.config.syslog.host}:{self.config.syslog.port}")
        parts.append("into " + " and ".join(s.name for s in self.sinks))
        return "; ".join(parts)

    def status(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.counters.as_dict()
        for sink in self.sinks:
            counters.update(sink.counters())
        return {"state": "paused" if self._paused_for is not None else self.state, "host": self.config.node,
                "uptime_s": round(time.time() - self.started, 1), "counters": counters,
                "errors": [t.error for t in [*self.tailers, *self.sources] if t.error]}

    def _commit(self) -> None:
        self.acks.commit()
        for source in {id(s): s for s in self._acking.values()}.values():
            source.commit()

    def stats_line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.status()["counters"].items())


def _on_calls(records: list[SipMessage | HepLog]) -> int:
    """How many records correlation will hand back: a message without a Call-ID is on no call."""
    return sum(1 for r in records if isinstance(r, HepLog) or r.call_id is not None)
