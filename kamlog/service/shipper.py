"""The shipper: a thread that drains the spool into Elasticsearch, oldest segment first, and
removes a segment only once the cluster has answered for every document in it.

What the cluster answers decides a document's fate. Created, or 409 (a document with its
deterministic id is already there: sent before a crash), is done. A refusal that is the
document's own fault (400, a mapping conflict) goes to the dead-letter file with the reason,
and is done too. Everything else is the cluster's state, not the document's: it cannot be
reached, times out, is overloaded (429), failing (5xx), blocks writes or refuses kamlog's
credentials (401, 403). Then the segment stays, the shipper waits, doubling the wait up to
`retry_max`, and sends what is left of it again; it never dead-letters a document because
the cluster is down. Kamlog's templates are installed once, when the cluster is first reached."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..errors import KamlogError
from ..store.documents import Document
from ..store.elastic.client import Cluster, ClusterError, connect, failure
from ..store.elastic.cluster import Bulk, DeadLetter, refusal, setup
from .spool import Segment, Spool

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger("kamlog.collect")
UP: Final = "up"
DOWN: Final = "down"
CATCHING_UP: Final = "catching up"
# A document answered with one of these is sent again later, never dead-lettered.
_RETRY_STATUS: Final = frozenset({0, 401, 403, 408, 429})
_JOIN_GRACE = 5.0


class _Unavailable(Exception):
    """The cluster did not take the segment (the message says why); it is sent again later."""

    def __init__(self, message: str, *, outage: bool) -> None:
        super().__init__(message)
        self.outage = outage


class Shipper:
    """Ships `spool` into the data streams of `namespace` on `cluster`, in a daemon thread.

    `connect` makes a client (kamlog's, which checks the cluster's version, by default); it is
    called again after every failure, so that a cluster that moved or restarted is found anew.
    The counters are read by other threads (health endpoint, log): `sent` (created), `present`
    (already there), `refused` (dead-lettered), `retries` (waits before sending again),
    `outages` (times the cluster became unreachable), `state` (up, down, catching up) and
    `last_error` (the latest failure as one sentence, without secrets)."""

    def __init__(self, spool: Spool, cluster: Cluster, namespace: str, dead_letter: str, *,
                 connect: Callable[[Cluster], Elasticsearch] = connect, retry_initial: float = 1.0,
                 retry_max: float = 30.0, chunk_size: int = 2000) -> None:
        self.spool = spool
        self.cluster = cluster
        self.namespace = namespace
        self.dead_letter = DeadLetter(dead_letter)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.chunk_size = chunk_size
        self.sent = 0
        self.present = 0
        self.refused = 0
        self.retries = 0
        self.outages = 0
        self.state = DOWN
        self.last_error: str | None = None
        self._connect = connect
        self._client: Elasticsearch | None = None
        self._set_up = False
        self._failures = 0  # in a row: the next wait is retry_initial * 2 ** (failures - 1)
        self._reachable = False
        self._answered: set[str] = set()  # ids of the current segment the cluster answered for
        self._answered_in: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="kamlog-shipper", daemon=True)
        spool.on_put = self.wake

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        """Ships at once what was just spooled (the thread otherwise sleeps while idle)."""
        self._wake.set()

    def stop(self, *, drain_timeout: float) -> None:
        """Ships what it can within `drain_timeout` seconds, then stops; what is left stays in
        the spool for the next start. A request still in flight at the deadline is abandoned
        with the (daemon) thread: its segment is still in the spool, and sending it again adds
        nothing twice."""
        self._deadline = time.monotonic() + max(0.0, drain_timeout)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(max(0.0, drain_timeout) + _JOIN_GRACE)
        if not self._thread.is_alive():
            self.dead_letter.close()

    def counters(self) -> dict[str, int | str | None]:
        return {"state": self.state, "sent": self.sent, "present": self.present, "refused": self.refused,
                "retries": self.retries, "outages": self.outages, "last_error": self.last_error,
                "spool_bytes": self.spool.size_bytes, "spool_segments": self.spool.segments,
                "spool_documents": self.spool.documents, "spool_corrupt": self.spool.corrupt}

    def _ending(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        while not self._ending():
            self._wake.clear()
            try:
                if self._client is None:
                    self._reach()
                segment = self.spool.oldest()
                if segment is None:
                    self.state = UP
                    if self._stop.is_set():
                        return
                    self._wake.wait()
                    continue
                self.state = CATCHING_UP if self.spool.segments > 1 else UP
                self._ship(segment)
                self._failures = 0
            except Exception as exc:  # the thread must outlive anything; each failure is a sentence
                self._failed(exc)
                self._back_off()

    def _reach(self) -> None:
        client = self._connect(self.cluster)
        try:
            if not self._set_up:
                setup(client, self.cluster)
                self._set_up = True
        except BaseException:
            client.close()
            raise
        self._client = client
        if self.outages:
            log.info("%s is reachable again: shipping the %d documents spooled meanwhile",
                     self.cluster.shown(), self.spool.documents)
        self._reachable = True
        self.state = UP

    def _ship(self, segment: Segment) -> None:
        client = self._client
        assert client is not None
        if self._deadline is not None:  # draining: no request may outlast the deadline by much
            left = max(1.0, self._deadline - time.monotonic())
            client = client.options(request_timeout=left, max_retries=0)
        bulk = Bulk(client, self.namespace, chunk_size=self.chunk_size)
        if self._answered_in != segment.path:
            self._answered, self._answered_in = set(), segment.path
        answered = self._answered
        todo: list[Document] = []
        for doc in segment.documents:
            if doc.id in answered:
                continue
            if doc.dataset not in bulk.streams:
                info = {"_id": doc.id, "error": f"kamlog has no data stream for the dataset {doc.dataset!r}"}
                self.dead_letter.write(doc, info, str(info["error"]))
                self.refused += 1
                answered.add(doc.id)
            else:
                todo.append(doc)
        later: dict[str, int] = {}
        whole_request = False
        try:
            for outcome in bulk.send(todo):
                info = outcome.info
                ident = str(info.get("_id"))
                if outcome.ok:
                    self.sent += 1
                elif outcome.status == 409:
                    self.present += 1
                elif outcome.status in _RETRY_STATUS or outcome.status >= 500 or "exception" in info:
                    reason = refusal(self.cluster, info)
                    later[reason] = later.get(reason, 0) + 1
                    whole_request = whole_request or "exception" in info
                    continue
                else:
                    self.dead_letter.write(outcome.document, info, refusal(self.cluster, info))
                    self.refused += 1
                answered.add(ident)
        except KamlogError:
            raise
        except Exception as exc:
            raise _Unavailable(str(failure(self.cluster, exc)), outage=True) from None
        finally:
            self.dead_letter.sync()  # durable before the spool may forget the documents
        if later:
            reason = max(later, key=later.__getitem__)  # the most frequent
            raise _Unavailable(f"{self.cluster.shown()} did not take {sum(later.values())} documents ({reason}); "
                               "they are sent again later", outage=whole_request)
        self.spool.remove(segment)
        self._answered, self._answered_in = set(), None

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, _Unavailable):
            outage = exc.outage
            message = str(exc)
        elif isinstance(exc, KamlogError):
            outage = isinstance(exc, ClusterError)
            message = str(exc)
        else:
            outage = True
            message = str(failure(self.cluster, exc))
        self.last_error = message
        self._failures += 1
        self.retries += 1
        if outage:
            if self._reachable or self.outages == 0:
                self.outages += 1
                log.warning("%s; documents are spooled and sent once it answers (retrying with back-off)", message)
            self._reachable = False
            self.state = DOWN
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:
                    pass
                self._client = None

    def _back_off(self) -> None:
        wait = min(self.retry_max, self.retry_initial * 2 ** (self._failures - 1))
        if self._deadline is not None:
            time.sleep(max(0.0, min(wait, self._deadline - time.monotonic())))
        else:
            self._stop.wait(wait)
