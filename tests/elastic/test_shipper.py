"""The service's shipper against a real Elasticsearch (9.x and 8.x) that goes away: documents
spooled while the cluster is down, or whose shipping it interrupts, or whose shipper is killed,
all end in the cluster exactly once; nothing is dead-lettered because the cluster was down; a
document the cluster refuses is dead-lettered and does not block the others.

The module runs a server of its own, because it stops and restarts it on the same port and data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kamlog.service.shipper import CATCHING_UP, DOWN, UP, Shipper
from kamlog.service.spool import Spool
from kamlog.store.documents import Document
from kamlog.store.elastic.client import Cluster
from tests.elastic.server import VERSIONS, Server, http, start

pytestmark = pytest.mark.realworld

WAIT = 240.0  # bound of every wait: generous for a loaded 2-core machine, never a timing assertion


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"es{v}" for v in VERSIONS])
def own_es(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = start(request.param, heap="512m")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def running_es(own_es: Server) -> Server:
    """The module's server, running (a test that stopped it and failed may have left it down)."""
    if own_es.process.poll() is not None:
        own_es.restart()
    return own_es


def documents(first: int, count: int, **extra: Any) -> list[Document]:
    out = []
    for n in range(first, first + count):
        ident = f"doc{n:09d}"
        source = {"@timestamp": f"2024-05-01T12:00:00.{n:09d}Z", "message": f"line {n} of the test",
                  "event.dataset": "kamailio.log", "event.id": ident, "log.level": "INFO", **extra}
        out.append(Document(ident, "kamailio.log", 1714564800_000_000_000 + n, None, 0, json.dumps(source)))
    return out


def spool_batches(spool: Spool, batches: int, size: int, first: int = 0) -> int:
    for k in range(batches):
        spool.put(documents(first + k * size, size))
    return first + batches * size


def stored(server: Server, namespace: str) -> tuple[int, list[str]]:
    """How many documents the data stream holds, and the ids held more than once."""
    stream = f"logs-kamailio.log-{namespace}"
    http(server, f"/{stream}/_refresh", method="POST")
    answer = http(server, f"/{stream}/_search", {
        "size": 0, "track_total_hits": True,
        "aggs": {"twice": {"terms": {"field": "event.id", "min_doc_count": 2, "size": 10}}}})
    return answer["hits"]["total"]["value"], [b["key"] for b in answer["aggregations"]["twice"]["buckets"]]


def until(what: str, ready: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def shipper_for(server: Server, spool: Spool, namespace: str, tmp_path: Path, **options: Any) -> Shipper:
    options = {"retry_initial": 0.1, "retry_max": 1.0, **options}
    return Shipper(spool, Cluster(server.url), namespace, str(tmp_path / "dead.ndjson"), **options)


class TestOutage:
    def test_documents_spooled_while_the_cluster_is_down_arrive_once_when_it_returns(
            self, running_es: Server, tmp_path: Path) -> None:
        running_es.halt()
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        shipper = shipper_for(running_es, spool, "outage", tmp_path)
        shipper.start()
        try:
            total = spool_batches(spool, 40, 250)
            until("the shipper retried the cluster that is down", lambda: shipper.retries >= 3)
            assert shipper.state == DOWN and shipper.outages == 1
            assert shipper.last_error is not None
            assert shipper.last_error.startswith(f"cannot reach Elasticsearch at {running_es.url}")
            assert (spool.segments, spool.documents) == (40, total)
            assert shipper.refused == 0 and not (tmp_path / "dead.ndjson").exists()

            running_es.restart()
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "outage") == (total, [])
        assert (shipper.sent, shipper.present, shipper.refused) == (total, 0, 0)
        assert shipper.state == UP and spool.size_bytes == 0 and not (tmp_path / "dead.ndjson").exists()
        # The shipper installed kamlog's templates when it first reached the cluster.
        mappings = http(running_es, "/logs-kamailio.log-outage/_mapping/field/@timestamp")
        assert [m["mappings"]["@timestamp"]["mapping"]["@timestamp"]["type"] for m in mappings.values()] == ["date_nanos"]

    def test_a_cluster_killed_mid_shipping_and_restarted_gets_every_document_once(
            self, running_es: Server, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        total = spool_batches(spool, 60, 1000)
        shipper = shipper_for(running_es, spool, "midrun", tmp_path, chunk_size=100)
        states: set[str] = set()
        shipper.start()
        try:
            until("some documents were shipped", lambda: (states.add(shipper.state), shipper.sent >= 2000)[1])
            running_es.halt(kill=True)
            assert spool.segments > 0, "the spool was emptied before the cluster was killed: spool more"
            total = spool_batches(spool, 5, 1000, first=total)  # and more while it is down
            until("the shipper saw the cluster go", lambda: shipper.state == DOWN)
            running_es.restart()
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "midrun") == (total, [])
        # Each document was answered once: created, or found there when sent again after the kill.
        assert shipper.sent + shipper.present == total and shipper.refused == 0
        assert shipper.outages >= 1 and CATCHING_UP in states
        assert not (tmp_path / "dead.ndjson").exists()

    def test_a_cluster_that_blocks_writes_is_waited_for_and_nothing_is_dead_lettered(
            self, running_es: Server, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        spool.put(documents(0, 10))
        shipper = shipper_for(running_es, spool, "blocked", tmp_path)
        shipper.start()
        try:
            until("the first batch arrived", lambda: spool.segments == 0)
            http(running_es, "/logs-kamailio.log-blocked/_settings", {"index.blocks.write": True}, "PUT")
            try:
                spool.put(documents(10, 10))
                until("the shipper was refused by the block", lambda: shipper.retries >= 2)
                assert spool.segments == 1 and shipper.refused == 0
                assert shipper.last_error is not None and "cluster_block_exception" in shipper.last_error
            finally:
                http(running_es, "/logs-kamailio.log-blocked/_settings", {"index.blocks.write": None}, "PUT")
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "blocked") == (20, [])
        assert (shipper.sent, shipper.refused) == (20, 0) and not (tmp_path / "dead.ndjson").exists()


class TestCrash:
    def test_a_shipper_killed_at_any_moment_leaves_every_document_once_after_a_restart(
            self, running_es: Server, tmp_path: Path) -> None:
        directory = tmp_path / "spool"
        batches, size = 80, 500
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import time
            from kamlog.service.shipper import Shipper
            from kamlog.service.spool import Spool
            from kamlog.store.elastic.client import Cluster
            from tests.elastic.test_shipper import spool_batches
            spool = Spool({str(directory)!r}, 1 << 30)
            spool_batches(spool, {batches}, {size})
            print("spooled", flush=True)
            shipper = Shipper(spool, Cluster({running_es.url!r}), "crash", {str(tmp_path / "dead.ndjson")!r},
                              chunk_size=50)
            shipper.start()
            time.sleep(600)
            """)], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2], start_new_session=True)
        try:
            assert child.stdout is not None and child.stdout.readline() == b"spooled\n"
            until("the child shipped some segments",
                  lambda: child.poll() is not None or len(list(directory.glob("*.seg"))) < batches - 5)
            assert child.poll() is None, "the shipping child died by itself"
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
        spool = Spool(str(directory), 1 << 30)
        assert 0 < spool.segments, "the child shipped everything before it was killed: spool more"
        shipper = shipper_for(running_es, spool, "crash", tmp_path)
        shipper.start()
        try:
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "crash") == (batches * size, [])
        assert shipper.refused == 0 and not (tmp_path / "dead.ndjson").exists()


class TestRefusals:
    def test_a_document_the_cluster_refuses_is_dead_lettered_and_the_rest_arrive(
            self, running_es: Server, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        bad = documents(5, 1, message={"not": "text"})[0]
        stranger = Document("stranger", "kamailio.rtp", 0, None, 0, '{"message":"a dataset kamlog has not"}')
        spool.put([*documents(0, 5), bad, stranger, *documents(6, 4)])
        shipper = shipper_for(running_es, spool, "refused", tmp_path)
        shipper.start()
        try:
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "refused") == (9, [])
        assert (shipper.sent, shipper.present, shipper.refused) == (9, 0, 2)
        lines = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
        assert [(line["_id"], line["document"]) for line in lines] == [
            ("stranger", {"message": "a dataset kamlog has not"}), (bad.id, json.loads(bad.source))]
        assert lines[0]["error"] == "kamlog has no data stream for the dataset 'kamailio.rtp'"
        assert lines[1]["status"] == 400 and "parsing_exception" in lines[1]["error"]

    def test_documents_sent_again_are_counted_present_and_stored_once(
            self, running_es: Server, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        spool.put(documents(0, 30))
        spool.put(documents(10, 30))
        shipper = shipper_for(running_es, spool, "again", tmp_path)
        shipper.start()
        try:
            until("the spool is empty", lambda: spool.segments == 0)
        finally:
            shipper.stop(drain_timeout=10)
        assert stored(running_es, "again") == (40, [])
        assert (shipper.sent, shipper.present) == (40, 20)


class TestStop:
    def test_stop_drains_the_spool_into_a_cluster_that_is_up(self, running_es: Server, tmp_path: Path) -> None:
        spool = Spool(str(tmp_path / "spool"), 1 << 30)
        total = spool_batches(spool, 20, 200)
        shipper = shipper_for(running_es, spool, "drained", tmp_path)
        shipper.start()
        shipper.stop(drain_timeout=WAIT)
        assert not shipper.running and spool.segments == 0
        assert stored(running_es, "drained") == (total, [])

    def test_stop_gives_up_on_a_cluster_that_is_down_and_keeps_the_spool(self, running_es: Server,
                                                                         tmp_path: Path) -> None:
        running_es.halt()
        try:
            spool = Spool(str(tmp_path / "spool"), 1 << 30)
            total = spool_batches(spool, 3, 100)
            shipper = shipper_for(running_es, spool, "kept", tmp_path, retry_max=30.0)
            shipper.start()
            until("the shipper tried the cluster", lambda: shipper.retries >= 1)
            shipper.stop(drain_timeout=1)
            assert not shipper.running
            assert Spool(str(tmp_path / "spool"), 1 << 30).documents == total
            assert shipper.refused == 0 and not (tmp_path / "dead.ndjson").exists()
        finally:
            running_es.restart()

    def test_an_idle_shipper_stops_at_once(self, running_es: Server, tmp_path: Path) -> None:
        shipper = shipper_for(running_es, Spool(str(tmp_path / "spool"), 1 << 30), "idle", tmp_path)
        shipper.start()
        until("the shipper reached the cluster", lambda: shipper.state == UP)
        shipper.stop(drain_timeout=0)
        assert not shipper.running


def test_the_server_restarts_on_the_same_port_with_its_data(running_es: Server) -> None:
    http(running_es, "/kept", {"settings": {"index.number_of_replicas": 0}}, "PUT")
    http(running_es, "/kept/_doc/1?refresh=true", {"a": 1}, "PUT")
    url = running_es.url
    running_es.halt()
    with pytest.raises(urllib.error.URLError):
        http(running_es, "/")
    running_es.restart()
    assert running_es.url == url and http(running_es, "/kept/_doc/1")["_source"] == {"a": 1}
