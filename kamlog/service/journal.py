"""The [journald] source of `kamlog collect`: follows `journalctl -o json` in a thread, hands
Kamailio's entries to the collector's queue, and keeps the journal cursor up to which every
entry is stored (state_dir/journal.json), so that a restart, even after kill -9, goes on
exactly there.

An entry's document id is made of its place in the journal, which the cursor tells
(`s=<seqnum_id>;i=<seqnum, hex>;b=...`; systemd 252's `journalctl -o json` prints `__CURSOR`
but no `__SEQNUM`): the event's path is `journal:<seqnum_id>`, named by a hash of the seqnum
id, and its offset is the seqnum. journald keeps both across its restarts and file rotations
and starts a new seqnum id when it starts a journal afresh, so an entry read twice gets the
same id and two entries never share one."""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from hashlib import blake2b
from queue import Queue
from typing import IO, Any

import orjson

from ..atomic import write_atomically
from ..errors import KamlogError, SourceError
from ..events import LogEvent
from ..parsing.grammar import Grammar, get_grammar
from ..parsing.logline import LineParser, ParseStats
from ..sources.journal import GRAMMAR, end_process, journal_matches
from ..store.documents import Identities
from .collector import EventBatch
from .config import JournalSource
from .handoff import hand_over

log = logging.getLogger("kamlog.collect")
PATH_PREFIX = "journal:"
_CURSOR = b'"__CURSOR":"'
_READ = 1 << 20  # bytes taken from journalctl at once: one batch


def cursor_place(cursor: str) -> tuple[str, int] | None:
    """(seqnum id, seqnum) of a journal cursor, or None when it has no `s=` and `i=`."""
    fields = dict(part.partition("=")[::2] for part in cursor.split(";"))
    try:
        return fields["s"], int(fields["i"], 16)
    except (KeyError, ValueError):
        return None


def journal_identity(seqnum_id: str) -> bytes:
    """The identity of the events of one seqnum id, as Documents hashes it into their ids."""
    return blake2b(seqnum_id.encode(), digest_size=16).digest()


@dataclass(slots=True)
class _Entry:
    cursor: str
    done: bool  # stored, or nothing of it is to be stored (another program, a blank message)


class JournalTail:
    """Follows the journal in a thread (an EventSource) and is told which of its events are
    stored (Acking).

    With no saved cursor (a first start), it reads from the beginning of what the journal
    holds for the matches, so the history is collected too, then follows. With one, it
    starts at the saved entry itself (`--cursor`, that entry dropped when it comes back)
    rather than after it (`--after-cursor`): when journald has vacuumed the saved entry
    away, `--after-cursor` also skips the first entry that is left (seen with systemd 252).

    `--merge` is there because `--follow` alone implies `--boot` (systemd 252 does): the
    entries of an earlier boot after the saved cursor would be skipped, and a --directory
    that holds no entry yet is an error. It also reads the journals of other machines kept
    beside this one's (containers, journal-remote); their entries have seqnum ids of their own."""

    def __init__(self, source: JournalSource, state_path: str, out: Queue[Any], identities: Identities,
                 journalctl: str = "journalctl") -> None:
        self.source = source
        self.state_path = state_path
        self.out = out
        self.identities = identities
        self.journalctl = journalctl
        self.error: str | None = None
        self.stats = ParseStats()
        self.grammar: Grammar = get_grammar(GRAMMAR, source.options.overrides())
        self.parsers: dict[str, LineParser] = {}
        self.saved = self._load()  # the cursor to start at: every entry up to it is stored
        self._written = self.saved
        self._skip = cursor_place(self.saved) if self.saved is not None else None
        self._lock = threading.Lock()
        self._read: deque[_Entry] = deque()  # entries read and not yet committed, in journal order
        self._waiting: dict[tuple[str, int], _Entry] = {}  # (path, seqnum) -> its entry, until stored
        self._stop = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._run, name="kamlog-journal", daemon=True)

    # -- life ------------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [self.journalctl, "-o", "json", "--follow", "--merge", "--no-tail", "--no-pager"]
        if self.source.directory is not None:
            cmd += ["--directory", self.source.directory]
        if self.saved is not None:
            cmd.append(f"--cursor={self.saved}")
        return cmd + journal_matches(self.source.options, self.source.units)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """The thread ends journalctl and puts None within a fraction of a second."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            self._follow()
        except KamlogError as exc:
            self.error = str(exc)
            log.error("%s; the [journald] source stopped", exc)
        finally:
            self._end_journalctl()
            self._put(None)  # tells the collector this source is done

    def _follow(self) -> None:
        cmd = self.command()
        if shutil.which(self.journalctl) is None:
            raise SourceError(f"{self.journalctl} is not installed, so the journal cannot be read")
        where = self.source.directory or "the system journal"
        with tempfile.TemporaryFile() as stderr:
            try:
                self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
            except OSError as exc:
                raise SourceError(f"cannot run {self.journalctl}: {exc.strerror}") from None
            if self.saved is None:
                log.info("journal: reading %s from its first entry, then following it", where)
            else:
                log.info("journal: reading %s from where it was left (cursor %s)", where, self.saved)
            assert self.process.stdout is not None
            fd = self.process.stdout.fileno()
            rest = b""
            while not self._stop.is_set():
                if not select.select([fd], [], [], 0.2)[0]:
                    continue
                data = os.read(fd, _READ)
                if not data:
                    break
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                events = self.read(lines)
                if events:
                    self._put(EventBatch(events, self))
            if self._stop.is_set():
                return
            code = self.process.wait()
            raise SourceError(f"{self.journalctl} ended with exit code {code}: {_last_line(stderr)}")

    def _end_journalctl(self) -> None:
        process = self.process
        if process is None:
            return
        end_process(process)
        if process.stdout is not None:
            process.stdout.close()

    def _put(self, batch: EventBatch | None) -> None:
        hand_over(self.out, batch, self._stop)  # a batch given up is read again after the cursor

    # -- reading ---------------------------------------------------------------------------

    def read(self, lines: list[bytes]) -> list[LogEvent]:
        """The events of these `journalctl -o json` lines; each entry is noted as read, and as
        done at once when it gives no event (another program's, a blank message). An entry
        the grammar cannot parse is an event too, with `error` set."""
        events: list[LogEvent] = []
        entries: list[tuple[_Entry, tuple[str, int] | None]] = []
        for raw in lines:
            cursor = _cursor(raw)
            place = cursor_place(cursor) if cursor is not None else None
            if place is None:
                if raw.strip():
                    log.warning("journal: an entry without a cursor is left out: %.200r", raw)
                continue
            assert cursor is not None
            if self._skip is not None:
                first, self._skip = self._skip == place, None
                if first:
                    continue  # --cursor starts at the saved entry, which is stored
            seqnum_id, seqnum = place
            path = PATH_PREFIX + seqnum_id
            event = self._parser(path).parse_line(raw.decode("utf-8", "replace"), seqnum)
            entry = _Entry(cursor, event is None)
            if event is None:
                entries.append((entry, None))
            else:
                events.append(event)
                entries.append((entry, (path, seqnum)))
        with self._lock:
            for entry, key in entries:
                self._read.append(entry)
                if key is not None:
                    if key in self._waiting:  # the same entry twice: stored once is enough
                        entry.done = True
                    else:
                        self._waiting[key] = entry
        return events

    def _parser(self, path: str) -> LineParser:
        parser = self.parsers.get(path)
        if parser is None:
            parser = self.parsers[path] = self.source.options.parser(self.grammar, path)
            parser.stats = self.stats
            self.identities.set(path, journal_identity(path[len(PATH_PREFIX):]))
        return parser

    # -- acknowledging ---------------------------------------------------------------------

    def stored(self, events: list[LogEvent]) -> None:
        with self._lock:
            for event in events:
                entry = self._waiting.pop((event.path, event.offset), None)
                if entry is not None:
                    entry.done = True

    def commit(self) -> None:
        """Write down the cursor of the last entry read such that it and every entry before it
        are stored (atomically, and only when it moved): the next start reads from there."""
        last = None
        with self._lock:
            read = self._read
            while read and read[0].done:
                last = read.popleft().cursor
        if last is None or last == self._written:
            return
        write_atomically(self.state_path, orjson.dumps({"cursor": last}))
        self._written = last

    def _load(self) -> str | None:
        try:
            with open(self.state_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read the journal cursor in {self.state_path}: {exc.strerror}") from None
        try:
            cursor = orjson.loads(data)["cursor"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            cursor = None
        if not isinstance(cursor, str) or cursor_place(cursor) is None:
            # Ids do not depend on where reading starts: reading it all again stores nothing twice.
            log.warning("%s holds no journal cursor; the journal is read again from its first entry",
                        self.state_path)
            return None
        return cursor


def _cursor(raw: bytes) -> str | None:
    """`__CURSOR` of a `journalctl -o json` line, found without decoding the whole entry."""
    start = raw.find(_CURSOR)
    if start < 0:
        return None
    end = raw.find(b'"', start + len(_CURSOR))
    return None if end < 0 else raw[start + len(_CURSOR) : end].decode("ascii", "replace")


def _last_line(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "it said nothing"
