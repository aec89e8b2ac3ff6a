"""Indexing speed: `kamlog index` into a local Elasticsearch and into the embedded store, beside
the cluster's own floor, a plain `_bulk` loop sending the very same documents.

    python3 bench/index.py [--packets 100000] [--runs 3] [--version 9.2.0] [--heap 2g]
    python3 bench/index.py --small            # a quick check end to end

The capture and log are bench/correlate.py's generated pair (cached in --out). Elasticsearch is
the test suite's (tests/elastic/server.py: Maven's integ-test-zip, run as an unprivileged user on
loopback). The documents kamlog would write are made once, untimed, and written as `_bulk` bodies;
each round then times, in turn: the plain loop (one HTTP/1.1 connection, bodies of 2000 documents,
`op_type: create`, read straight from memory), `kamlog index --es` and `kamlog index --store`,
each into a fresh namespace / file. Documents/s, and kamlog's peak RSS. Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]
import correlate as correlate_bench  # noqa: E402  (the generated inputs)
import parse as parse_bench  # noqa: E402  (run_once, machine)

TARGET = 0.8  # kamlog's documents/s into the cluster, as a share of the plain _bulk loop's
CHUNK = 2000


def documents(pcap: Path, log: Path) -> list[tuple[str, str, str]]:
    """(dataset, id, source) of every document `kamlog index` writes for the inputs."""
    from kamlog.correlate.inputs import classify
    from kamlog.correlate.run import correlate
    from kamlog.parsing.options import ParseOptions
    from kamlog.store.elastic.cluster import BulkResult
    from kamlog.store.index import IndexWriter

    out: list[tuple[str, str, str]] = []

    class Collect:
        def put(self, docs: list[Any]) -> None:
            out.extend((d.dataset, d.id, d.source) for d in docs)

        def finish(self) -> BulkResult:
            return BulkResult()

    correlate(classify([str(pcap)], [str(log)], []), ParseOptions(), IndexWriter(Collect()))
    return out


def bodies(docs: list[tuple[str, str, str]], namespace: str) -> list[bytes]:
    chunks = []
    for start in range(0, len(docs), CHUNK):
        lines = []
        for dataset, ident, source in docs[start:start + CHUNK]:
            lines.append(json.dumps({"create": {"_index": f"logs-{dataset}-{namespace}", "_id": ident}}))
            lines.append(source)
        chunks.append(("\n".join(lines) + "\n").encode())
    return chunks


def plain_bulk(url: str, chunks: list[bytes]) -> float:
    """Seconds to send every body, one after another, checking each answer for errors."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    for body in chunks:
        conn.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
        answer = json.loads(conn.getresponse().read())
        if answer.get("errors"):
            raise RuntimeError(f"the plain loop's _bulk failed: {json.dumps(answer)[:500]}")
    wall = time.perf_counter() - started
    conn.close()
    return wall


def refresh_count(url: str, namespace: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    conn.request("POST", f"/logs-kamailio.*-{namespace}/_refresh")
    conn.getresponse().read()
    conn.request("GET", f"/logs-kamailio.*-{namespace}/_count")
    count = int(json.loads(conn.getresponse().read())["count"])
    conn.close()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="--packets 10000 --runs 1")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--version", default="9.2.0", help="the Elasticsearch to run (tests/elastic/server.py)")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args(argv)
    if args.small:
        args.packets, args.runs = 10_000, 1
    from tests.elastic.server import start

    inputs = correlate_bench.generate(args.out, args.packets, args.rate)
    docs = documents(inputs.pcap, inputs.log)
    print(f"  {len(docs):,} documents from {inputs.pcap.name} + {inputs.log.name}", file=sys.stderr)
    server = start(args.version, heap=args.heap)
    rows: dict[str, list[tuple[float, int]]] = {"plain _bulk loop": [], "kamlog index --es": [], "kamlog index --store": []}
    try:
        cmd = [sys.executable, "-m", "kamlog"]
        parse_bench.run_once([*cmd, "es", "setup", "--es", server.url], False)
        for n in range(args.runs):
            ns = f"floor{n}"
            chunks = bodies(docs, ns)
            rows["plain _bulk loop"].append((plain_bulk(server.url, chunks), 0))
            assert refresh_count(server.url, ns) == len(docs)
            del chunks
            ns = f"kamlog{n}"
            run = parse_bench.run_once([*cmd, "index", "--es", server.url, "--namespace", ns,
                                        str(inputs.pcap), str(inputs.log)], False)
            assert refresh_count(server.url, ns) == len(docs)
            rows["kamlog index --es"].append((run.wall_s, run.maxrss_kb))
            with tempfile.TemporaryDirectory() as tmp:
                run = parse_bench.run_once([*cmd, "index", "--store", f"{tmp}/t.db", str(inputs.pcap),
                                            str(inputs.log)], False)
            rows["kamlog index --store"].append((run.wall_s, run.maxrss_kb))
            print(f"  round {n + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in rows.items()), file=sys.stderr)
    finally:
        server.stop()
    floor = len(docs) / min(w for w, _ in rows["plain _bulk loop"])
    info = parse_bench.machine()
    lines = [f"# Indexing {len(docs):,} documents ({args.packets:,} packets; best of {args.runs}; "
             f"Elasticsearch {args.version}, heap {args.heap}, single node on this machine)", "",
             f"{info.get('cpu', '')} {info.get('commit', '')}".strip(), "",
             "| writer | documents/s | share of the plain _bulk loop | peak RSS |", "|---|---:|---:|---:|"]
    for name, runs in rows.items():
        wall, rss = min(runs)
        rate = len(docs) / wall
        lines.append(f"| {name} | {rate:,.0f} | {rate / floor:.0%} | {f'{rss / 1024:,.0f} MiB' if rss else '-'} |")
    share = len(docs) / min(w for w, _ in rows["kamlog index --es"]) / floor
    lines += ["", f"Target: kamlog index --es at least {TARGET:.0%} of the plain loop: "
              f"{'met' if share >= TARGET else 'NOT met'} ({share:.0%})."]
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "index-results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
