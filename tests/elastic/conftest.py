"""`es_server`: a real Elasticsearch per version in tests.elastic.server.VERSIONS (9.x, 8.x),
started once per test session and stopped by its PID at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.elastic.server import VERSIONS, Server, start


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"es{v}" for v in VERSIONS])
def es_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = start(request.param)
    try:
        yield server
    finally:
        server.stop()
