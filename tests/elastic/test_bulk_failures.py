"""The bulk writer when the cluster goes away after kamlog connected: every event not yet
acknowledged, and every one still to come, is in the dead-letter file with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from kamlog.correlate.inputs import classify
from kamlog.correlate.run import correlate
from kamlog.parsing.options import ParseOptions
from kamlog.store.elastic.client import Cluster
from kamlog.store.elastic.cluster import BulkResult, BulkWriter
from kamlog.store.index import ElasticSink, IndexWriter
from tests.corpus.runners import free_port
from tests.correlate.test_correlate_real import PAIRS

pytestmark = pytest.mark.realworld

LOG = "syslog-rfc3339.log"


def test_a_cluster_gone_mid_run_leaves_every_event_in_the_dead_letter_file(corpus: Path, tmp_path: Path) -> None:
    # A port nobody listens on stands for a cluster that went down after `connect` saw it.
    cluster = Cluster(f"http://127.0.0.1:{free_port()}")
    client = Elasticsearch(cluster.url, max_retries=1, request_timeout=5)
    dead = tmp_path / "dead.ndjson"
    writer = IndexWriter(ElasticSink(BulkWriter(client, cluster, "default", str(dead), chunk_size=500)))
    summary = correlate(classify([str(corpus / PAIRS[LOG])], [str(corpus / LOG)], []), ParseOptions(), writer)
    result = writer.result
    assert isinstance(result, BulkResult)
    events = summary.messages + summary.log_events
    assert (result.added, result.present, result.failed) == (0, 0, events)
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len({line["_id"] for line in lines}) == len(lines) == events
    assert all(line["document"]["event.id"] == line["_id"] for line in lines)
    assert result.errors and all(reason.startswith(f"cannot reach Elasticsearch at {cluster.url}")
                                 for reason in result.errors)
    assert all(line["error"].startswith(f"cannot reach Elasticsearch at {cluster.url}") for line in lines)
