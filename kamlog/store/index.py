"""`kamlog index`: correlation's calls and records, as Documents, into a store. The embedded
store is written in the correlating thread; Elasticsearch in a second one, fed through a short
queue, so that correlating and the cluster's round trips overlap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Full, Queue
from typing import Protocol

from ..correlate.attribution import Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from .documents import Document, Documents
from .elastic.cluster import BulkResult, BulkWriter
from .sqlite import SqliteStore

_BATCH = 2000


class Sink(Protocol):
    def put(self, documents: list[Document]) -> None: ...
    def finish(self) -> BulkResult: ...


class SqliteSink:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.result = BulkResult()

    def put(self, documents: list[Document]) -> None:
        added, present = self.store.add(documents)
        self.result.added += added
        self.result.present += present

    def finish(self) -> BulkResult:
        self.store.close()
        return self.result


class ElasticSink:
    def __init__(self, writer: BulkWriter) -> None:
        self.writer = writer
        self.queue: Queue[list[Document] | None] = Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kamlog-bulk", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        def documents() -> Iterator[Document]:
            while (batch := self.queue.get()) is not None:
                yield from batch

        try:
            self.writer.add(documents())
        except BaseException as exc:  # handed to the correlating thread, which raises it
            self.error = exc

    def put(self, documents: list[Document]) -> None:
        while True:
            if self.error is not None or not self.thread.is_alive():
                self._raise()
            try:
                self.queue.put(documents, timeout=0.5)
                return
            except Full:
                continue

    def finish(self) -> BulkResult:
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.5)
                break
            except Full:
                continue
        self.thread.join()
        if self.error is not None:
            self._raise()
        self.writer.close()
        return self.writer.result

    def _raise(self) -> None:
        self.writer.close()
        error = self.error
        if error is None:
            raise RuntimeError("the bulk writer stopped without saying why")
        raise error


class IndexWriter:
    """A correlate() Writer that hands every event, as a Document, to a Sink in batches."""

    def __init__(self, sink: Sink, documents: Documents | None = None) -> None:
        self.sink = sink
        self.documents = documents or Documents()
        self.batch: list[Document] = []
        self.result: BulkResult | None = None

    def call(self, timeline: CallTimeline) -> None:
        self.batch.extend(self.documents.call(timeline))
        if len(self.batch) >= _BATCH:
            self._flush()

    def unattributed(self, placed: Placed, skew: Skew) -> None:
        self.batch.append(self.documents.unattributed(placed, skew))
        if len(self.batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        batch, self.batch = self.batch, []
        self.sink.put(batch)

    def close(self, summary: Summary) -> None:
        if self.batch:
            self._flush()
        self.result = self.sink.finish()
