"""The embedded store's tables: one row per event, holding the very document Elasticsearch gets."""

from __future__ import annotations

from typing import Final

# events.ts is `@timestamp` in nanoseconds since the epoch (NULL when the event has none);
# events.ord is the event's place in its call's timeline, so a call reads back in its order;
# messages is a contentless FTS5 index of `message`, keyed by events.rowid; `_` joins words, as
# in Elasticsearch's standard analyzer, so Kamailio's `t_relay` is one word in both stores.
DDL: Final = """
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts INTEGER,
    call TEXT,
    ord INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_call ON events (call, ord);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_call_id ON events (json_extract(doc, '$."sip.call_id"'));
CREATE VIRTUAL TABLE IF NOT EXISTS messages USING fts5 (
    message, content='', tokenize="unicode61 remove_diacritics 2 tokenchars '_'"
);
"""
