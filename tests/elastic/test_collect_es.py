"""`kamlog collect` into a real Elasticsearch: the cluster stopped and started again mid-run
(the service spools and catches up: every event once), a spool too small for the outage
(reading pauses, nothing dropped), and two Kamailio nodes, each with its own collect, feeding
one cluster: a call that crossed both is one call in `kamlog show`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamlog.store.elastic.client import Cluster, connect
from kamlog.store.elastic.cluster import search
from tests.cli_helpers import kamlog
from tests.corpus.runners import (LOOPBACK, Kamailio, MountNamespace, Rsyslog, RsyslogOutput, Sipp, free_port,
                                  syslog_pipeline, wait_for)
from tests.elastic.server import VERSIONS, Server, start
from tests.service.live import Collect, RotatingTcpdump, expected_ids, write_config

pytestmark = pytest.mark.realworld


@pytest.fixture(scope="module")
def own_es() -> Iterator[Server]:
    """A cluster of this module's own: its tests stop and start it."""
    server = start(VERSIONS[0])
    try:
        yield server
    finally:
        server.stop()


def es_ids(server: Server, namespace: str) -> list[str]:
    client = connect(Cluster(server.url))
    client.indices.refresh(index=f"logs-kamailio.*-{namespace}", ignore_unavailable=True, allow_no_indices=True)
    return [str(d["event.id"]) for d in search(client, Cluster(server.url), namespace, {"match_all": {}}, None)]


def es_state(collect: Collect) -> str:
    health = collect.health()
    return "" if health is None else str(health["counters"].get("es_state"))


def run_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.2)


class TestClusterOutage:
    def test_every_event_arrives_once_after_the_cluster_was_stopped_kamlog_killed_and_both_started_again(
            self, own_es: Server, tmp_path: Path) -> None:
        log = tmp_path / "log" / "kamailio.log"
        captures = tmp_path / "captures"
        captures.mkdir()
        config = tmp_path / "kamlog.toml"
        port = write_config(config, tmp_path / "state", logs=[str(log)], captures=f"{captures}/sip-*.pcap",
                            es=own_es.url, extra="")
        config.write_text(config.read_text() + 'namespace = "outage"\n')
        with syslog_pipeline(tmp_path, log, template="RSYSLOG_FileFormat", rate=4, debug=2) as pipe:
            with RotatingTcpdump(tmp_path, captures, [pipe.kamailio.sip_port, pipe.uas.local_port]) as dump:
                with Collect(tmp_path, config, port) as collect:
                    wait_for(lambda: es_state(collect) == "up", timeout=60, what="the shipper to reach the cluster")
                    run_for(4)
                    own_es.halt()
                    wait_for(lambda: es_state(collect) == "down", timeout=120, what="the service to see the outage")
                    run_for(4)  # reading goes on into the spool
                    health = collect.health()
                    assert health is not None and health["counters"]["es_spool_documents"] > 0
                    collect.kill()  # kill -9 with the cluster down and a spool full of documents
                    collect.start()
                    run_for(2)
                    own_es.restart()
                    run_for(2)
                    assert pipe.uac is not None
                    pipe.uac.stop()
                    time.sleep(1)
                    dump.stop()
                    pipe.kamailio.stop()
                    pipe.rsyslog.drain()
                    want = expected_ids(tmp_path, [log], sorted(captures.glob("sip-*.pcap")))
                    wait_for(lambda: set(es_ids(own_es, "outage")) >= want, timeout=180,
                             what="the service to catch up with the cluster")
                    assert collect.stop() == 0, collect.output
        got = es_ids(own_es, "outage")
        assert len(got) == len(set(got)) == len(want)
        assert set(got) == want
        assert "Traceback" not in collect.output
        assert "documents are spooled and sent once it answers" in collect.output
        assert "is reachable again: shipping the" in collect.output
        assert not (tmp_path / "state" / "dead-letter.ndjson").exists() or \
            (tmp_path / "state" / "dead-letter.ndjson").stat().st_size == 0

    def test_a_full_spool_pauses_reading_and_nothing_is_dropped(self, own_es: Server, tmp_path: Path) -> None:
        log = tmp_path / "kamailio.log"
        log.write_bytes(b"")
        config = tmp_path / "kamlog.toml"
        port = write_config(config, tmp_path / "state", logs=[str(log)], es=own_es.url, spool_max="100KB",
                            call_timeout=1)
        config.write_text(config.read_text().replace("[service]\n", "[service]\nmax_waiting = 5000\n")
                          + 'namespace = "full"\n')
        example = (Path(__file__).resolve().parents[2] / "examples" / "kamailio.log").read_bytes().splitlines(True)
        with Collect(tmp_path, config, port) as collect:
            wait_for(lambda: es_state(collect) == "up", timeout=60, what="the shipper to reach the cluster")
            own_es.halt()
            try:
                # Many distinct lines: each round's Call-IDs differ, so each is a new event.
                with log.open("ab") as f:
                    for n in range(1000):
                        f.writelines(line.replace(b"@kamlog.test", b"-%d@kamlog.test" % n) for line in example)
                written = 1000 * len(example)  # 17 MB: more than the spool and the queue hold

                def paused() -> bool:
                    health = collect.health()
                    return health is not None and health["state"] == "paused"

                wait_for(paused, timeout=120, what="the service to pause reading")
                health = collect.health()
                assert health is not None and health["counters"]["lines"] < written
            finally:
                own_es.restart()
            wait_for(lambda: len(es_ids(own_es, "full")) == written, timeout=180,
                     what="every line to arrive once the cluster is back")
        assert "reading is paused until it has room again; nothing is dropped" in collect.output
        # Whether max_waiting paused it first or not, the full spool did, and it went on after.
        assert "reading resumes" in collect.output


class NodeRsyslog(Rsyslog):
    """A node's rsyslog, which writes the node's own name in each line (as on its own machine)."""

    def __init__(self, tmp_path: Path, log: Path, node: str) -> None:
        super().__init__(tmp_path, [RsyslogOutput(log, "RSYSLOG_FileFormat")], name=f"rsyslog-{node}")
        self.node = node

    def render_config(self) -> str:
        return super().render_config().replace('global(', f'global(localHostname="node-{self.node}" ', 1)


@contextlib.contextmanager
def node(tmp_path: Path, name: str) -> Iterator[tuple[Kamailio, Path, Rsyslog]]:
    """One Kamailio node logging through its own rsyslog into its own file."""
    log = tmp_path / name / "kamailio.log"
    with NodeRsyslog(tmp_path, log, name) as rsyslog, \
            MountNamespace(tmp_path, rsyslog.socket_path, name=f"ns-{name}") as ns, \
            Kamailio(tmp_path, log_target="syslog", namespace=ns, debug=2, name=f"kamailio-{name}") as kamailio:
        yield kamailio, log, rsyslog


class TestManyNodes:
    def test_a_call_through_two_nodes_is_one_call_with_each_nodes_events(self, es_server: Server,
                                                                          tmp_path: Path) -> None:
        namespace = "nodes"
        call_id = "two-nodes-1@kamlog.test"
        with node(tmp_path, "a") as (kamailio_a, log_a, rsyslog_a), node(tmp_path, "b") as (kamailio_b, log_b, rsyslog_b):
            uas_port = free_port()
            # "answer" is at B (its UAS); A knows "answer" as B itself: the call goes A -> B -> UAS.
            for registrar, contact, tag in ((kamailio_b, uas_port, "b"), (kamailio_a, kamailio_b.sip_port, "a")):
                result = Sipp(tmp_path, "register.xml", remote=(LOOPBACK, registrar.sip_port),
                              call_id=f"register-{tag}@kamlog.test", keys={"user": "answer", "contact_port": contact},
                              name=f"sipp-register-{tag}").run()
                assert result.ok, result.output
            collects = []
            for name, log in (("a", log_a), ("b", log_b)):
                config = tmp_path / f"kamlog-{name}.toml"
                port = write_config(config, tmp_path / f"state-{name}", logs=[str(log)], es=es_server.url,
                                    hostname=f"node-{name}", call_timeout=1)
                config.write_text(config.read_text() + f'namespace = "{namespace}"\n')
                collects.append(Collect(tmp_path, config, port, name=f"collect-{name}"))
            with collects[0], collects[1]:
                with Sipp(tmp_path, "uas-answer.xml", local_port=uas_port, name="sipp-uas"):
                    result = Sipp(tmp_path, "uac-call.xml", remote=(LOOPBACK, kamailio_a.sip_port),
                                  call_id=call_id, keys={"callee": "answer"}, name="sipp-uac").run()
                    assert result.ok, result.output
                rsyslog_a.drain()
                rsyslog_b.drain()

                def both_nodes_stored() -> bool:
                    client = connect(Cluster(es_server.url))
                    client.indices.refresh(index=f"logs-kamailio.*-{namespace}", ignore_unavailable=True,
                                           allow_no_indices=True)
                    docs = list(search(client, Cluster(es_server.url), namespace,
                                       {"term": {"kamlog.call": call_id}}, None))
                    return {d.get("host.hostname") for d in docs} >= {"node-a", "node-b"}

                wait_for(both_nodes_stored, timeout=120, what="both nodes' lines of the call to be stored")
        client = connect(Cluster(es_server.url))
        docs = list(search(client, Cluster(es_server.url), namespace, {"term": {"kamlog.call": call_id}}, None))
        by_node = {n: [d for d in docs if d.get("host.hostname") == n] for n in ("node-a", "node-b")}
        assert all(by_node.values())
        assert len({d["kamlog.timeline"] for d in docs}) == 2  # one timeline per node
        shown = kamlog("show", "--es", es_server.url, "--namespace", namespace, call_id)
        assert shown.returncode == 0, shown.stderr
        for n, mine in by_node.items():
            for doc in mine:
                assert doc["message"][:60] in shown.stdout, (n, doc["message"])
        # The lines in time order across the nodes: A routes the INVITE before B does.
        a_routes = shown.stdout.index(f"routing INVITE for answer to sip:answer@127.0.0.1:{kamailio_b.sip_port}")
        b_routes = shown.stdout.index(f"routing INVITE for answer to sip:answer@127.0.0.1:{uas_port}")
        assert a_routes < b_routes
