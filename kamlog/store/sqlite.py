"""The embedded store: one SQLite file holding every indexed event's document, searchable with
the same queries as Elasticsearch (`message` through FTS5)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from itertools import islice

from ..errors import SourceError
from ..query import register_functions
from .documents import Document
from .schema import DDL

_BATCH = 5000
# Each new row's message goes to the FTS index; INSERT OR IGNORE skips the trigger for an id
# already there, so re-indexing touches neither table.
_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS events_message AFTER INSERT ON events
WHEN json_extract(new.doc, '$.message') IS NOT NULL
BEGIN
    INSERT INTO messages (rowid, message) VALUES (new.rowid, json_extract(new.doc, '$.message'));
END;
"""


def default_path() -> str:
    """`$KAMLOG_STORE`, else `kamlog/timeline.db` in the user's data directory (XDG)."""
    chosen = os.environ.get("KAMLOG_STORE")
    if chosen:
        return chosen
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "kamlog", "timeline.db")


class SqliteStore:
    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        if not create and not os.path.exists(path):
            raise SourceError(f"no store at {path}: index something first (kamlog index ...) or give --store")
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(DDL + _TRIGGER)
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{path} is not a kamlog store: {exc}") from None
        except OSError as exc:
            raise SourceError(f"cannot create the store {path}: {exc.strerror or exc}") from None
        register_functions(self.db)

    def add(self, documents: Iterable[Document]) -> tuple[int, int]:
        """Writes the documents in batches; returns (added, already there)."""
        added = present = 0
        rows = ((d.id, d.ts_ns, d.call, d.ord, d.source) for d in documents)
        while batch := list(islice(rows, _BATCH)):
            # Rows only ever get added, each with the next rowid: the rowid's growth counts them
            # (total_changes would count the FTS index's rows too).
            before = self._last_rowid()
            try:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR IGNORE INTO events (id, ts, call, ord, doc) VALUES (?, ?, ?, ?, ?)",
                                    batch)
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise SourceError(f"cannot write to the store {self.path}: {exc}") from None
            new = self._last_rowid() - before
            added += new
            present += len(batch) - new
        return added, present

    def _last_rowid(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])

    def search(self, where: str, params: list[object], limit: int | None) -> Iterator[str]:
        """The documents matching a compiled query, oldest first."""
        sql = f"SELECT doc FROM events WHERE {where} ORDER BY ts, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return (str(row[0]) for row in self._query(sql, params))

    def call(self, call_id: str) -> list[str]:
        """Every document of the call that `call_id` names (the call's own or a linked leg's
        Call-ID), in the order of its timeline."""
        calls: list[object] = [row[0] for row in self._query(
            "SELECT DISTINCT call FROM events WHERE call = ? OR json_extract(doc, '$.\"sip.call_id\"') = ?",
            [call_id, call_id]) if row[0] is not None]
        if not calls:
            return []
        marks = ",".join("?" * len(calls))
        return [str(row[0]) for row in self._query(
            f"SELECT doc FROM events WHERE call IN ({marks}) ORDER BY call, ord", calls)]

    def _query(self, sql: str, params: list[object]) -> list[tuple[object, ...]]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read the store {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()
