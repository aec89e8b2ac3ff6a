"""Shared fixtures: the real-Kamailio corpus (tests/corpus/) is made once per machine and cached."""

from tests.corpus.fixtures import corpus  # noqa: F401


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite tests/grammars/**/*.log-expected.json from what kamlog parses now",
    )
    parser.addoption(
        "--update-readme",
        action="store_true",
        help="rewrite the output of README.md's console examples from what kamlog prints now",
    )
