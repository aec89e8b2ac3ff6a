"""Connecting to a cluster: URL, API key or basic auth, TLS with a CA file; errors as sentences
that never carry a secret."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import KamlogError, UsageError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

RETRY_STATUS = (429, 502, 503, 504)


class ClusterError(KamlogError):
    """The cluster cannot be reached, or refuses kamlog (auth, privileges, mappings)."""


@dataclass(frozen=True)
class Cluster:
    url: str
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify: bool = True
    timeout: float = 30.0

    def shown(self) -> str:
        """The URL without any credentials in it."""
        return _scrub(self.url)


def connect(cluster: Cluster) -> Elasticsearch:
    """A client for the cluster, after checking that it answers and is 8.x or later."""
    from elasticsearch import Elasticsearch

    if not re.match(r"^https?://", cluster.url):
        raise UsageError(f"--es wants a URL like http://localhost:9200, not {cluster.shown()!r}")
    if cluster.password is not None and cluster.username is None:
        raise UsageError("a password was given without a user name (--es-user / ELASTIC_USERNAME)")
    options: dict[str, Any] = {
        "request_timeout": cluster.timeout, "max_retries": 3, "retry_on_timeout": True,
        "retry_on_status": RETRY_STATUS,
    }
    if cluster.api_key:
        options["api_key"] = cluster.api_key
    elif cluster.username is not None:
        options["basic_auth"] = (cluster.username, cluster.password or "")
    if cluster.url.startswith("https://"):
        if cluster.ca_certs:
            options["ca_certs"] = cluster.ca_certs
        options["verify_certs"] = cluster.verify
        if not cluster.verify:
            options["ssl_show_warn"] = False
    try:
        client = Elasticsearch(cluster.url, **options)
        version = _version(client)
    except Exception as exc:  # the client raises many kinds; each becomes one sentence
        raise failure(cluster, exc) from None
    if not version[:1].isdigit() or int(version.split(".")[0]) < 8:
        raise ClusterError(f"{cluster.shown()} runs Elasticsearch {version}; kamlog needs 8.x or 9.x")
    return client


def _version(client: Elasticsearch) -> str:
    from elasticsearch import ApiError

    try:
        return str(client.info()["version"]["number"])
    except ApiError as exc:
        if exc.meta.status != 405:  # a minimal distribution without the root endpoint
            raise
    nodes = client.nodes.info(node_id="_local", metric="_none")["nodes"]
    return str(next(iter(nodes.values()))["version"])


def failure(cluster: Cluster, exc: Exception) -> ClusterError:
    """What went wrong talking to the cluster, as one sentence without secrets."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException
    from elastic_transport import ConnectionError, ConnectionTimeout, TlsError

    where = cluster.shown()
    if isinstance(exc, AuthenticationException):
        return ClusterError(f"{where} refused kamlog's credentials (HTTP 401): check the API key or user and password")
    if isinstance(exc, AuthorizationException):
        return ClusterError(f"{where} does not allow this (HTTP 403): {_reason(exc)}")
    if isinstance(exc, TlsError):
        return ClusterError(f"cannot verify the TLS certificate of {where}: give its CA with --es-ca-certs")
    if isinstance(exc, ConnectionTimeout):
        return ClusterError(f"{where} did not answer within {cluster.timeout:g} s")
    if isinstance(exc, ConnectionError):
        return ClusterError(f"cannot reach Elasticsearch at {where}: {_scrub(str(exc.message))}")
    if isinstance(exc, ApiError):
        return ClusterError(f"{where} answered HTTP {exc.meta.status}: {_reason(exc)}")
    return ClusterError(f"talking to {where} failed: {_scrub(str(exc))}")


def _reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return _scrub(str(error.get("reason") or error.get("type") or error))
        if error:
            return _scrub(str(error))
    return _scrub(str(getattr(exc, "message", exc)))


def _scrub(text: str) -> str:
    return re.sub(r"//[^/@\s]*@", "//", text)
