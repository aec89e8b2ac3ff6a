"""`kamlog es setup`, `index --es`, `search --es` and `show --es` against a real Elasticsearch
(9.x and 8.x): templates, a real correlated corpus indexed once, the same answers as the
embedded store, and failures as one-line errors or dead-letter files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kamlog
from tests.corpus.runners import free_port
from tests.correlate.test_correlate_real import PAIRS
from tests.elastic.server import Server, http

pytestmark = pytest.mark.realworld

LOG = "syslog-rfc3339.log"
# Kibana users' queries; each must give the same events from the cluster and the embedded store.
QUERIES = [
    "",
    "sip.method : INVITE",
    "sip.method : (INVITE or BYE) and not sip.type : response",
    "sip.code >= 400",
    "sip.code >= 200 and sip.code < 300",
    "log.level : (ERROR or WARNING) and not log.logger : tm",
    "log.level : ERROR or (log.level : INFO and log.logger : core)",
    'message : "cleaning up"',
    "message : relay",
    "message : route unknown",
    "message : rel*",
    "sip.from.uri.username : 100*",
    "sip.via.original : *",
    "not sip.call_id : *",
    "source.ip : 127.0.0.0/8 and sip.type : request",
    "kamlog.attribution : call_id and log.level : *",
    "process.pid > 0 and process.pid <= 4194304",
    "sip.cseq.method : REGISTER or sip.method : OPTIONS",
    "event.dataset : kamailio.log and not message : probe",
]


def run(*args: str, code: int = 0, **kw: Any) -> Any:
    done = kamlog(*args, timeout=300, **kw)
    assert done.returncode == code, done.stderr
    return done


def found(*args: str) -> list[dict[str, Any]]:
    out = run("search", *args, "--format", "json", "--limit", "all").stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def stores(es_server: Server, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The corpus indexed into the cluster (namespace per module run) and into an embedded store."""
    namespace = "t" + es_server.version.replace(".", "_")
    store = tmp_path_factory.mktemp("store") / "timeline.db"
    inputs = [str(corpus / PAIRS[LOG]), str(corpus / LOG)]
    setup = run("es", "setup", "--es", es_server.url).stdout
    es_out = run("index", "--es", es_server.url, "--namespace", namespace, *inputs).stdout
    run("index", "--store", str(store), *inputs)
    return {"es": ["--es", es_server.url, "--namespace", namespace], "store": ["--store", str(store)],
            "setup": setup, "index": es_out, "inputs": inputs, "namespace": namespace}


def test_es_setup_installs_templates_above_the_builtin_logs_template(es_server: Server, stores: dict[str, Any]) -> None:
    lines = stores["setup"].splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "component template kamlog@settings", "component template kamlog@mappings",
        "index template logs-kamailio.log", "index template logs-kamailio.sip"]
    again = run("es", "setup", "--es", es_server.url).stdout.splitlines()
    assert all(line.endswith(": up to date") for line in again)
    for dataset in ("log", "sip"):
        template = http(es_server, f"/_index_template/logs-kamailio.{dataset}")["index_templates"][0]["index_template"]
        assert template["priority"] > 100 and template["index_patterns"] == [f"logs-kamailio.{dataset}-*"]
    mapping = http(es_server, f"/logs-kamailio.log-{stores['namespace']}/_mapping")
    properties = next(iter(mapping.values()))["mappings"]["properties"]
    assert properties["@timestamp"]["type"] == "date_nanos"
    assert properties["message"]["type"] == "text"
    assert properties["sip"]["properties"]["call_id"]["type"] == "keyword"
    assert properties["log"]["properties"]["level"]["type"] == "keyword"


def test_index_writes_each_event_once_into_the_two_data_streams(es_server: Server, stores: dict[str, Any]) -> None:
    ns = stores["namespace"]
    stored = found("", *stores["store"])
    counts = {d: http(es_server, f"/logs-kamailio.{d}-{ns}/_count")["count"] for d in ("log", "sip")}
    assert counts["log"] == sum(1 for d in stored if d["event.dataset"] == "kamailio.log")
    assert counts["sip"] == sum(1 for d in stored if d["event.dataset"] == "kamailio.sip")
    assert f"{len(stored)} added, 0 already there" in stores["index"]
    again = run("index", *stores["es"], *stores["inputs"]).stdout
    assert again.endswith(f"0 added, {len(stored)} already there\n")
    http(es_server, f"/logs-kamailio.*-{ns}/_refresh", method="POST")
    assert sum(http(es_server, f"/logs-kamailio.{d}-{ns}/_count")["count"] for d in ("log", "sip")) == len(stored)


@pytest.mark.parametrize("query", QUERIES)
def test_a_query_gives_the_same_events_from_the_cluster_and_the_embedded_store(stores: dict[str, Any], query: str) -> None:
    from_es = [d["event.id"] for d in found(query, *stores["es"])]
    from_store = [d["event.id"] for d in found(query, *stores["store"])]
    assert from_es == from_store
    if query in ("", "sip.method : INVITE", "sip.code >= 400", "message : relay"):
        assert from_es, f"{query!r} should match some of the corpus"


def test_a_kibana_query_brings_a_call_back_whole_and_in_order(es_server: Server, stores: dict[str, Any]) -> None:
    invite = found("sip.method : INVITE", *stores["store"], "--limit", "1")[0]
    call = invite["kamlog.call"]
    # What Kibana's Discover sends for `kamlog.call : "<id>"` sorted by @timestamp.
    body = {"query": {"bool": {"filter": [{"match_phrase": {"kamlog.call": call}}]}},
            "sort": [{"@timestamp": "asc"}, {"kamlog.sequence": "asc"}], "size": 1000}
    hits = http(es_server, f"/logs-kamailio.*-{stores['namespace']}/_search", body)["hits"]["hits"]
    from_es = [h["_source"] for h in hits]
    shown = [json.loads(line) for line in run("show", call, *stores["store"], "--format", "json").stdout.splitlines()]
    assert [d["event.id"] for d in from_es] == [d["event.id"] for d in shown]
    assert [d["kamlog.sequence"] for d in from_es] == list(range(len(from_es)))
    es_show = run("show", call, *stores["es"]).stdout
    assert es_show == run("show", call, *stores["store"]).stdout


def test_a_cluster_that_is_down_is_a_one_line_error(corpus: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = kamlog("index", "--es", url, str(corpus / PAIRS[LOG]), str(corpus / LOG), cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: cannot reach Elasticsearch at {url}") and done.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_secrets_from_the_environment_are_never_printed(corpus: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = kamlog("search", "", "--es", f"http://kamlog:hunter2@127.0.0.1:{url.rsplit(':', 1)[1]}",
                  env={"ELASTIC_API_KEY": "c2VjcmV0LWtleQ==", "ELASTIC_USERNAME": "kamlog", "ELASTIC_PASSWORD": "s3cret"})
    assert done.returncode == 1
    for secret in ("hunter2", "c2VjcmV0LWtleQ==", "s3cret"):
        assert secret not in done.stderr + done.stdout


def test_documents_the_cluster_refuses_go_to_the_dead_letter_file(es_server: Server, stores: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    # A user's template that makes sip.code a boolean: every response is refused by the mapping.
    http(es_server, "/_index_template/refuse-sip-codes", {
        "index_patterns": ["logs-kamailio.sip-refused"], "data_stream": {}, "priority": 300,
        "template": {"mappings": {"properties": {"sip.code": {"type": "boolean"}}}}}, "PUT")
    try:
        dead = tmp_path / "dead.ndjson"
        done = kamlog("index", "--es", es_server.url, "--namespace", "refused", "--dead-letter", str(dead),
                      *stores["inputs"], timeout=300)
    finally:
        http(es_server, "/_index_template/refuse-sip-codes", method="DELETE")
    assert done.returncode == 1
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    responses = [d for d in found("sip.type : response", *stores["store"])]
    assert len(lines) == len(responses) > 0
    assert {line["document"]["event.id"] for line in lines} == {d["event.id"] for d in responses}
    assert all("mapper_parsing_exception" in line["error"] or "document_parsing_exception" in line["error"]
               for line in lines)
    assert f"{len(lines)} events were refused" in done.stderr and str(dead) in done.stderr
