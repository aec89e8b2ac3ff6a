"""Where the service stores: the embedded SQLite store (written in the loop, durable once added),
and Elasticsearch through an on-disk spool (durable once spooled; a thread ships it)."""

from __future__ import annotations

import os
from typing import Any

from ..store.documents import Document
from ..store.sqlite import SqliteStore
from .config import ElasticSink, ServiceConfig, StoreSink


class Store:
    def __init__(self, sink: StoreSink) -> None:
        self.store = SqliteStore(sink.path)
        self.name = f"the embedded store {sink.path}"
        self.added = self.present = 0

    def put(self, documents: list[Document]) -> None:
        added, present = self.store.add(documents)
        self.added += added
        self.present += present

    def has_room(self) -> bool:
        return True

    def counters(self) -> dict[str, Any]:
        return {"store_added": self.added, "store_present": self.present}

    def close(self, drain_timeout: float) -> None:
        self.store.close()


class Elastic:
    """Documents go to the spool; the shipper drains it into the cluster. When the cluster is
    down the spool grows, up to its bound; then `has_room` is false and the collector stops
    reading until the shipper catches up."""

    def __init__(self, sink: ElasticSink, state_dir: str) -> None:
        from ..store.elastic.client import Cluster
        from .shipper import Shipper
        from .spool import Spool

        self.spool = Spool(os.path.join(state_dir, "spool"), sink.spool_max_bytes)
        env = os.environ.get
        # Secrets only from the environment (systemd's EnvironmentFile), never the config file.
        cluster = Cluster(sink.url, env("ELASTIC_API_KEY") or None, env("ELASTIC_USERNAME") or None,
                          env("ELASTIC_PASSWORD") or None, sink.ca_certs or env("ELASTIC_CA_CERTS") or None)
        self.name = f"Elasticsearch {cluster.shown()}"
        dead_letter = sink.dead_letter or os.path.join(state_dir, "dead-letter.ndjson")
        self.shipper = Shipper(self.spool, cluster, sink.namespace, dead_letter)
        self.shipper.start()

    def put(self, documents: list[Document]) -> None:
        self.spool.put(documents)

    def has_room(self) -> bool:
        return self.spool.has_room()

    def counters(self) -> dict[str, Any]:
        return {f"es_{k}": v for k, v in self.shipper.counters().items()}

    def close(self, drain_timeout: float) -> None:
        self.shipper.stop(drain_timeout=drain_timeout)


def open_sinks(config: ServiceConfig) -> list[Any]:
    sinks: list[Any] = []
    if config.store is not None:
        sinks.append(Store(config.store))
    if config.elasticsearch is not None:
        sinks.append(Elastic(config.elasticsearch, config.state_dir))
    return sinks
