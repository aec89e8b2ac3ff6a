"""kamlog against a real Elasticsearch with security on, as production clusters run: TLS on HTTP
with a CA of the cluster's own, basic auth, API keys; credentials from the environment, never
printed, and each refusal one line.

The integ-test-zip cannot create API keys (its .security index needs the analysis-common module
it lacks), so an API key is tested as the cluster's refusal of one it does not know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import kamlog
from tests.correlate.test_correlate_real import PAIRS
from tests.elastic.server import VERSIONS, Server, start

pytestmark = pytest.mark.realworld

LOG = "syslog-rfc3339.log"


@pytest.fixture(scope="module")
def secure_es() -> Iterator[Server]:
    server = start(VERSIONS[0], secure=True)
    try:
        yield server
    finally:
        server.stop()


def env_of(server: Server, **more: str) -> dict[str, str]:
    return {"KAMLOG_ES": server.url, "ELASTIC_USERNAME": str(server.user),
            "ELASTIC_PASSWORD": str(server.password), "ELASTIC_CA_CERTS": str(server.ca_file), **more}


def test_basic_auth_and_the_clusters_ca_from_the_environment_index_and_search(secure_es: Server, corpus: Path) -> None:
    env = env_of(secure_es)
    setup = kamlog("es", "setup", env=env, timeout=120)
    assert setup.returncode == 0, setup.stderr
    done = kamlog("index", "--namespace", "secure", str(corpus / PAIRS[LOG]), str(corpus / LOG), env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert " 0 already there" in done.stdout and f"into {secure_es.url} (logs-kamailio.*-secure)" in done.stdout
    found = kamlog("search", "sip.method : INVITE", "--namespace", "secure", "--format", "json", env=env)
    assert found.returncode == 0 and found.stdout.count("\n") > 0, found.stderr
    for text in (setup, done, found):
        assert str(secure_es.password) not in text.stdout + text.stderr


def test_a_wrong_password_is_a_one_line_error_that_does_not_print_it(secure_es: Server) -> None:
    done = kamlog("search", "", env=env_of(secure_es, ELASTIC_PASSWORD="not-the-password"))
    assert done.returncode == 1
    assert done.stderr == (f"Error: {secure_es.url} refused kamlog's credentials (HTTP 401): "
                           "check the API key or user and password\n")
    assert "not-the-password" not in done.stdout + done.stderr


def test_an_api_key_the_cluster_does_not_know_is_refused_in_one_line(secure_es: Server) -> None:
    key = "a2FtbG9nOm5vdC1hLWtleQ=="
    env = {"KAMLOG_ES": secure_es.url, "ELASTIC_API_KEY": key, "ELASTIC_CA_CERTS": str(secure_es.ca_file)}
    done = kamlog("search", "", env=env)
    assert done.returncode == 1
    assert "refused kamlog's credentials (HTTP 401)" in done.stderr and done.stderr.count("\n") == 1
    assert key not in done.stdout + done.stderr


def test_a_certificate_without_its_ca_is_a_one_line_error(secure_es: Server) -> None:
    env = {**env_of(secure_es), "ELASTIC_CA_CERTS": ""}
    done = kamlog("search", "", env=env)
    assert done.returncode == 1
    assert done.stderr == (f"Error: cannot verify the TLS certificate of {secure_es.url}: "
                           "give its CA with --es-ca-certs\n")


def test_a_password_written_into_the_url_is_never_printed(secure_es: Server) -> None:
    url = secure_es.url.replace("https://", f"https://{secure_es.user}:wrong-in-url@")
    done = kamlog("search", "", "--es", url, env={"ELASTIC_CA_CERTS": str(secure_es.ca_file)})
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "wrong-in-url" not in done.stdout + done.stderr
