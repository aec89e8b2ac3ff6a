"""The commands that keep timelines: `kamlog index`, `search`, `show` and `es setup`."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from .cli import _Count, _note, _reports_errors, cli, parse_options
from .errors import UsageError
from .parsing.options import ParseOptions

if TYPE_CHECKING:
    from .store.elastic.client import Cluster
    from .store.sqlite import SqliteStore


def cluster_options(f: Any) -> Any:
    """A cluster and its credentials, and (for commands that read or write timelines, which
    `store_options` marks) the embedded store instead. Secrets are best given by environment:
    they then never show in `ps`."""

    @functools.wraps(f)
    def command(*args: Any, es: str | None, store: str | None = None, api_key: str | None, user: str | None,
                password: str | None, ca_certs: str | None, verify: bool, namespace: str, **kwargs: Any) -> Any:
        from .store.elastic.client import Cluster

        if store and es:
            raise UsageError("give either --store (the embedded store) or --es (a cluster), not both")
        cluster = Cluster(es, api_key or None, user or None, password, ca_certs, verify) if es else None
        return f(*args, store=store, cluster=cluster, namespace=namespace, **kwargs)

    decorators = [
        click.option("--es", metavar="URL", envvar="KAMLOG_ES", help="An Elasticsearch cluster instead, e.g. http://localhost:9200 [env KAMLOG_ES]."),
        click.option("--es-api-key", "api_key", metavar="KEY", envvar="ELASTIC_API_KEY", help="API key (the encoded form) [env ELASTIC_API_KEY]."),
        click.option("--es-user", "user", metavar="NAME", envvar="ELASTIC_USERNAME", help="Basic auth user [env ELASTIC_USERNAME]."),
        click.option("--es-password", "password", metavar="PASSWORD", envvar="ELASTIC_PASSWORD", help="Basic auth password [env ELASTIC_PASSWORD]."),
        click.option("--es-ca-certs", "ca_certs", metavar="FILE", envvar="ELASTIC_CA_CERTS", help="CA certificate(s) to verify the cluster's TLS certificate [env ELASTIC_CA_CERTS]."),
        click.option("--es-verify/--es-no-verify", "verify", default=True, help="Verify the cluster's TLS certificate (default: verify)."),
        click.option("--namespace", default="default", show_default=True, envvar="KAMLOG_NAMESPACE", help="Data stream namespace: logs-kamailio.log-<namespace> [env KAMLOG_NAMESPACE]."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def store_options(f: Any) -> Any:
    """`cluster_options`, and `--store`: the embedded store, the default."""
    return click.option("--store", metavar="PATH", help="The embedded store (SQLite) [default: $KAMLOG_STORE or ~/.local/share/kamlog/timeline.db].")(cluster_options(f))


def _open_store(path: str | None, create: bool) -> SqliteStore:
    from .store.sqlite import SqliteStore, default_path

    return SqliteStore(path or default_path(), create=create)


@cli.command()
@click.option("--pcap", "pcaps", multiple=True, metavar="FILE", help="A capture (pcap, pcapng, also compressed, a glob or a directory); repeatable.")
@click.option("--log", "logs", multiple=True, metavar="FILE", help="A Kamailio log (any format, also .gz; a glob or a rotated set); repeatable.")
@click.argument("more", nargs=-1, metavar="[FILE]...")
@store_options
@click.option("--dead-letter", metavar="FILE", help="Where events the cluster refuses are written [default: ./kamlog-dead-letter.ndjson].")
@parse_options
@_reports_errors
def index(pcaps: tuple[str, ...], logs: tuple[str, ...], more: tuple[str, ...], store: str | None,
          cluster: Cluster | None, namespace: str, dead_letter: str | None, options: ParseOptions) -> None:
    """Correlate captures and logs and keep the timeline: in the embedded store, or in
    Elasticsearch with --es. Indexing the same inputs again adds nothing twice."""
    from .correlate.inputs import classify
    from .correlate.run import correlate
    from .store.index import ElasticSink, IndexWriter, SqliteSink, Sink

    inputs = classify(pcaps, logs, more)
    sink: Sink
    if cluster is not None:
        from .store.elastic.client import connect
        from .store.elastic.cluster import BulkWriter, check_namespace, default_dead_letter, setup

        check_namespace(namespace)
        client = connect(cluster)
        for line in setup(client, cluster):
            if not line.endswith("up to date"):
                _note(line)
        sink = ElasticSink(BulkWriter(client, cluster, namespace, dead_letter or default_dead_letter()))
        where = f"{cluster.shown()} (logs-kamailio.*-{namespace})"
    else:
        opened = _open_store(store, create=True)
        sink = SqliteSink(opened)
        home = os.path.expanduser("~")
        where = "~" + opened.path[len(home):] if home != "/" and opened.path.startswith(home + "/") else opened.path
    writer = IndexWriter(sink)
    summary = correlate(inputs, options, writer, on_notice=_note, progress=sys.stderr.isatty())
    for note in summary.notes:
        _note(note)
    result = writer.result
    assert result is not None
    total = result.added + result.present + result.failed
    click.echo(f"indexed {total} events ({summary.messages} SIP messages, {summary.log_events} log lines) "
               f"of {summary.calls} calls into {where}: {result.added} added, {result.present} already there")
    if result.failed:
        reasons = "; ".join(f"{count} x {reason}" for reason, count in sorted(result.errors.items()))
        _note(f"{result.failed} events were refused ({reasons}); they are in {result.dead_letter}")
        sys.exit(1)


@cli.command()
@click.argument("query", default="")
@store_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text: one line per event; json: one object per event, as correlate --format json.")
@click.option("--limit", "-n", type=_Count(), default="100", show_default=True, help="At most N events (the oldest first), or 'all'.")
@_reports_errors
def search(query: str, store: str | None, cluster: Cluster | None, namespace: str, fmt: str,
           limit: int | None) -> None:
    """Find events with Kibana's query language (KQL), in the embedded store or a cluster:
    'log.level : (ERROR or WARNING) and not log.logger : tm', 'sip.code >= 400',
    'message : "no route"'. A query without a field searches message."""
    from .query import parse

    node = parse(query)
    _print(_find(node, store, cluster, namespace, limit), fmt)


@cli.command()
@click.argument("call_id")
@store_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text: the call's ladder, as correlate prints it; json: one object per event.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True, help="Colour levels like `kamailio -e` (text).")
@_reports_errors
def show(call_id: str, store: str | None, cluster: Cluster | None, namespace: str, fmt: str, color: str) -> None:
    """Show one call, read back from the store: every SIP message and log line of it (and of
    the legs correlated with it), in its timeline's order."""
    if cluster is not None:
        from .store.elastic.client import connect
        from .store.elastic.cluster import search as es_search

        client = connect(cluster)
        legs = {"bool": {"should": [{"term": {"kamlog.call": call_id}}, {"term": {"sip.call_id": call_id}}],
                         "minimum_should_match": 1}}
        calls = sorted({str(d["kamlog.call"]) for d in es_search(client, cluster, namespace, legs, 1000)
                        if d.get("kamlog.call")})
        order = [{"kamlog.call": {"order": "asc"}}, {"kamlog.sequence": {"order": "asc"}}]
        docs: list[Any] = list(es_search(client, cluster, namespace, {"terms": {"kamlog.call": calls}}, None,
                                         order)) if calls else []
    else:
        import orjson

        docs = [orjson.loads(text) for text in _open_store(store, create=False).call(call_id)]
    if not docs:
        raise UsageError(f"no call with the Call-ID {call_id} in the store")
    if fmt == "json":
        _print(iter(docs), fmt)
        return
    from .sinks.stored import render_calls

    use_color = color == "always" or (color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    sys.stdout.buffer.write("".join(line + "\n" for line in render_calls(docs, use_color)).encode("utf-8", "replace"))


def _find(node: Any, store: str | None, cluster: Cluster | None, namespace: str,
          limit: int | None) -> Iterator[dict[str, Any]]:
    if cluster is not None:
        from .query import to_dsl
        from .store.elastic.client import connect
        from .store.elastic.cluster import search as es_search

        return es_search(connect(cluster), cluster, namespace, to_dsl(node), limit)
    import orjson

    from .query import to_sql

    where, params = to_sql(node)
    return (orjson.loads(text) for text in _open_store(store, create=False).search(where, params, limit))


def _print(docs: Iterator[dict[str, Any]], fmt: str) -> None:
    out = sys.stdout.buffer
    if fmt == "json":
        import orjson

        for doc in docs:
            out.write(orjson.dumps(doc) + b"\n")
        return
    from .sinks.stored import event_line

    for doc in docs:
        out.write((event_line(doc) + "\n").encode("utf-8", "replace"))


@cli.group()
def es() -> None:
    """Elasticsearch: set up a cluster for kamlog."""


@es.command()
@cluster_options
@_reports_errors
def setup(cluster: Cluster | None, **_: Any) -> None:
    """Install (or update) kamlog's index templates for logs-kamailio.log-* and
    logs-kamailio.sip-*, and say what was done. `kamlog index --es` does it on first use."""
    from .store.elastic.client import connect
    from .store.elastic.cluster import setup as install

    if cluster is None:
        raise UsageError("name the cluster: --es URL (or KAMLOG_ES)")
    for line in install(connect(cluster), cluster):
        click.echo(line)
