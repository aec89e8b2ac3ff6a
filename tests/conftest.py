"""Shared fixtures: the real-Kamailio corpus (tests/corpus/) is made once per machine and cached."""

from tests.corpus.fixtures import corpus  # noqa: F401
