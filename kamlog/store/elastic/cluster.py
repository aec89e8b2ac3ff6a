"""What kamlog does on a cluster: install its templates, bulk-write documents (retrying
back-pressure, never losing one), and read events back in order."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from ...errors import SourceError, UsageError
from ..documents import Document
from .client import RETRY_STATUS, Cluster, ClusterError, failure
from .templates import DATASETS, component_templates, data_stream, index_templates

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

_PAGE = 5000


def check_namespace(namespace: str) -> str:
    if not namespace or len(namespace) > 100 or not all(c.islower() or c.isdigit() or c == "_" for c in namespace):
        raise UsageError(f"the namespace {namespace!r} must be lower-case letters, digits or _ (data stream names)")
    return namespace


def setup(client: Elasticsearch, cluster: Cluster) -> list[str]:
    """Installs (or updates) kamlog's templates; returns one line per template saying what it did."""
    done = []
    try:
        for name, body in component_templates().items():
            done.append(_install(client, "component", name, body))
        for name, body in index_templates().items():
            done.append(_install(client, "index", name, body))
    except ClusterError:
        raise
    except Exception as exc:
        raise failure(cluster, exc) from None
    return done


def _install(client: Elasticsearch, kind: str, name: str, body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body = {**body, "_meta": {**body["_meta"], "digest": digest}}
    putter: Any = client.cluster.put_component_template if kind == "component" else client.indices.put_index_template
    found = client.options(ignore_status=404).perform_request(
        "GET", f"/_{kind}_template/{name}", headers={"accept": "application/json"}).body
    key = "component_templates" if kind == "component" else "index_templates"
    existing = [t for t in found.get(key, []) if t.get("name") == name]
    if existing:
        meta = existing[0].get(f"{kind}_template", {}).get("_meta") or {}
        if meta.get("digest") == digest:
            return f"{kind} template {name}: up to date"
    putter(name=name, **body)
    return f"{kind} template {name}: {'updated' if existing else 'installed'}"


@dataclass
class BulkResult:
    added: int = 0
    present: int = 0  # already in the cluster (same id): re-indexed inputs
    failed: int = 0  # written to the dead-letter file
    dead_letter: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # failure reason -> count


class Outcome(NamedTuple):
    """What the cluster said of one document: `ok` when it created it, `status` 409 when one with
    its id was already there; any other status is a refusal whose `info` (the bulk item) says why."""

    document: Document | None  # None only when the cluster answered twice for one id
    ok: bool
    status: int
    info: dict[str, Any]


class Bulk:
    """Documents sent as `op_type: create` under their ids through the client's `streaming_bulk`,
    and each one's Outcome as the cluster answers. When the cluster cannot be reached (the
    client's own retries spent), `send` raises the client's exception: `pending` then holds the
    documents sent and not yet answered, and the caller decides what becomes of them (the
    `kamlog index` run dead-letters them, the service's shipper sends them again later).

    `max_retries` > 0 lets `streaming_bulk` retry 429 and 5xx answers itself, with back-off;
    0 reports them as Outcomes at once, for a caller that retries on its own schedule."""

    def __init__(self, client: Elasticsearch, namespace: str, *, chunk_size: int = 2000,
                 max_retries: int = 0) -> None:
        self.client = client
        self.streams = {dataset: data_stream(dataset, namespace) for dataset in DATASETS}
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.pending: dict[str, Document] = {}

    def _actions(self, documents: Iterable[Document]) -> Iterator[dict[str, Any]]:
        pending = self.pending
        streams = self.streams
        for doc in documents:
            pending[doc.id] = doc
            yield {"_op_type": "create", "_index": streams[doc.dataset], "_id": doc.id, "_source": doc.source}

    def send(self, documents: Iterable[Document]) -> Iterator[Outcome]:
        from elasticsearch.helpers import streaming_bulk

        self.pending.clear()
        results = streaming_bulk(
            self.client, self._actions(documents), chunk_size=self.chunk_size, max_chunk_bytes=20 << 20,
            raise_on_error=False, raise_on_exception=False, max_retries=self.max_retries,
            initial_backoff=1, max_backoff=30, retry_on_status=RETRY_STATUS, yield_ok=True)
        pending = self.pending
        for ok, item in results:
            info = item.get("create") or next(iter(item.values()))
            status = info.get("status")
            yield Outcome(pending.pop(str(info.get("_id")), None), ok, status if isinstance(status, int) else 0, info)


def refusal(cluster: Cluster, info: dict[str, Any]) -> str:
    """Why the cluster did not take a document, as one sentence, from its bulk item."""
    error = info.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    exc = info.get("exception")
    return str(failure(cluster, exc)) if isinstance(exc, Exception) else str(error)


class DeadLetter:
    """The dead-letter file: one JSON object per refused document, with its data stream, id,
    status, the reason and the document itself, appended; opened on the first refusal so that
    a run without one leaves no file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def write(self, doc: Document | None, info: dict[str, Any], reason: str) -> None:
        if self._file is None:
            try:
                self._file = open(self.path, "a", encoding="utf-8")
            except OSError as exc:
                raise SourceError(f"cannot write the dead-letter file {self.path}: {exc.strerror}") from None
        line = {"_index": info.get("_index"), "_id": info.get("_id"), "status": info.get("status"), "error": reason,
                "document": json.loads(doc.source) if doc is not None else info.get("data")}
        try:
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise SourceError(f"cannot write the dead-letter file {self.path}: {exc.strerror}") from None

    def sync(self) -> None:
        """Makes what was written durable (before the spool forgets the documents)."""
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                raise SourceError(f"cannot write the dead-letter file {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BulkWriter:
    """`kamlog index`'s writer: Documents through a Bulk that retries 429 and 5xx answers with
    back-off. A document the cluster refuses (a mapping conflict) or that cannot be sent (the
    cluster went away mid-run) goes to the dead-letter file, one JSON object per line with the
    reason: a one-off run has nowhere else to keep it."""

    def __init__(self, client: Elasticsearch, cluster: Cluster, namespace: str, dead_letter: str,
                 chunk_size: int = 2000, max_retries: int = 6) -> None:
        self.client = client
        self.cluster = cluster
        self.bulk = Bulk(client, namespace, chunk_size=chunk_size, max_retries=max_retries)
        self.streams = self.bulk.streams
        self.dead_letter = dead_letter
        self.result = BulkResult()
        self._dead = DeadLetter(dead_letter)

    def add(self, documents: Iterable[Document]) -> BulkResult:
        result = self.result
        rest = iter(documents)
        try:
            for outcome in self.bulk.send(rest):
                if outcome.ok:
                    result.added += 1
                elif outcome.status == 409:
                    result.present += 1
                else:
                    self._refused(outcome.document, outcome.info, refusal(self.cluster, outcome.info))
        except Exception as exc:  # the cluster went away and the client's retries are spent
            reason = str(failure(self.cluster, exc))
            for doc in [*self.bulk.pending.values(), *rest]:
                self._refused(doc, {"_index": self.streams[doc.dataset], "_id": doc.id, "error": reason}, reason)
            self.bulk.pending.clear()
        return result

    def _refused(self, doc: Document | None, info: dict[str, Any], reason: str) -> None:
        result = self.result
        result.failed += 1
        result.errors[reason] = result.errors.get(reason, 0) + 1
        self._dead.write(doc, info, reason)
        result.dead_letter = self.dead_letter

    def close(self) -> None:
        self._dead.close()
        try:
            self.client.indices.refresh(index=",".join(self.streams.values()), ignore_unavailable=True)
        except Exception:
            pass  # a refresh only makes the documents visible sooner


def search(client: Elasticsearch, cluster: Cluster, namespace: str, query: dict[str, Any],
           limit: int | None, sort: list[Any] | None = None) -> Iterator[dict[str, Any]]:
    """The matching documents, oldest first (ties by event.id, as the embedded store orders
    them), paged with search_after so that any number can be read."""
    index = f"logs-kamailio.*-{namespace}"
    order = sort or [{"@timestamp": {"order": "asc"}}, {"event.id": {"order": "asc"}}]
    after: list[Any] | None = None
    left = limit
    while left is None or left > 0:
        size = _PAGE if left is None else min(_PAGE, left)
        try:
            page = client.search(index=index, query=query, sort=order, size=size, search_after=after,
                                 ignore_unavailable=True, allow_no_indices=True, track_total_hits=False)
        except Exception as exc:
            raise failure(cluster, exc) from None
        hits = page["hits"]["hits"]
        for hit in hits:
            yield hit["_source"]
        if len(hits) < size:
            return
        after = hits[-1]["sort"]
        if left is not None:
            left -= len(hits)


def default_dead_letter() -> str:
    return os.path.abspath("kamlog-dead-letter.ndjson")
