"""`kamlog index`, `search` and `show` on the embedded store, with a real correlated corpus:
the events correlate writes, each once, searchable, and a call read back whole and in order."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kamlog
from tests.correlate.test_correlate_real import PAIRS, correlate_json

pytestmark = pytest.mark.realworld

LOG = "syslog-rfc3339.log"


def index(store: Path, *files: Path, code: int = 0) -> str:
    done = kamlog("index", "--store", str(store), *map(str, files), timeout=180)
    assert done.returncode == code, done.stderr
    return done.stdout


def search(store: Path, query: str, *more: str) -> list[dict[str, Any]]:
    done = kamlog("search", query, "--store", str(store), "--format", "json", "--limit", "all", *more)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def indexed(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    store = tmp_path_factory.mktemp("store") / "timeline.db"
    out = index(store, corpus / PAIRS[LOG], corpus / LOG)
    return store, out


def test_index_stores_every_event_correlate_writes_once(indexed: tuple[Path, str], corpus: Path) -> None:
    store, out = indexed
    expected = correlate_json(str(corpus / PAIRS[LOG]), str(corpus / LOG))
    stored = search(store, "")
    assert len(stored) == len(expected)
    assert len({doc["event.id"] for doc in stored}) == len(stored)
    assert f"indexed {len(expected)} events" in out and f"{len(expected)} added, 0 already there" in out
    # The same documents as correlate's JSON, plus the id, the place in the call and the raw SIP.
    key = lambda d: (d.get("log.offset", -1), d.get("kamlog.capture.frame", -1))  # noqa: E731
    for mine, theirs in zip(sorted(stored, key=key), sorted(expected, key=key)):
        extra = {k: mine.pop(k) for k in ("event.id", "kamlog.sequence", "kamlog.call_state", "kamlog.timeline", "event.original") if k in mine}
        assert mine == theirs
        assert "event.original" in extra or theirs["event.dataset"] == "kamailio.log"


def test_indexing_the_same_inputs_again_adds_nothing(indexed: tuple[Path, str], corpus: Path) -> None:
    store, first = indexed
    total = len(search(store, ""))
    again = index(store, corpus / PAIRS[LOG], corpus / LOG)
    assert again.endswith(f"0 added, {total} already there\n")
    assert len(search(store, "")) == total
    rows = sqlite3.connect(store).execute("SELECT count(*) FROM messages").fetchone()[0]
    assert rows == sum(1 for d in search(store, "") if "message" in d)


def test_a_rotated_and_compressed_copy_of_the_log_is_the_same_source(indexed: tuple[Path, str], corpus: Path,
                                                                     tmp_path: Path) -> None:
    import gzip

    store, _ = indexed
    rotated = tmp_path / "kamailio.log.1.gz"
    rotated.write_bytes(gzip.compress((corpus / LOG).read_bytes()))
    out = index(store, corpus / PAIRS[LOG], rotated)
    assert " 0 added," in out


def test_search_finds_a_call_by_call_id_in_time_order(indexed: tuple[Path, str]) -> None:
    store, _ = indexed
    invite = search(store, "sip.method : INVITE", "--limit", "1")[0]
    call_id = invite["sip.call_id"]
    events = search(store, f'sip.call_id : "{call_id}"')
    assert {e["event.dataset"] for e in events} == {"kamailio.sip", "kamailio.log"}
    times = [e["@timestamp"] for e in events]
    assert times == sorted(times)
    assert all(e["sip.call_id"] == call_id for e in events)


def test_search_combines_levels_modules_codes_and_words(indexed: tuple[Path, str]) -> None:
    store, _ = indexed
    everything = search(store, "")
    errors = search(store, "log.level : (ERROR or WARNING) and not log.logger : tm")
    assert errors and errors == [d for d in everything if d.get("log.level") in ("ERROR", "WARNING")
                                 and d.get("log.logger") != "tm"]
    failures = search(store, "sip.code >= 400")
    assert failures and all(d["sip.code"] >= 400 for d in failures)
    assert len(failures) == sum(1 for d in everything if d.get("sip.code", 0) >= 400)


def test_show_prints_the_call_as_correlate_does(indexed: tuple[Path, str], corpus: Path) -> None:
    store, _ = indexed
    invite = search(store, "sip.method : INVITE and sip.code : *", "--limit", "1") or \
        search(store, "sip.method : INVITE", "--limit", "1")
    call_id = invite[0]["sip.call_id"]
    shown = kamlog("show", call_id, "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    direct = kamlog("correlate", str(corpus / PAIRS[LOG]), str(corpus / LOG), "--call-id", call_id)
    ladder = direct.stdout.split("\n\n")
    expected = "\n\n".join(ladder[:2])
    # The skew is the same; how many messages it rests on is not stored.
    skew = lambda text: next(line for line in text.splitlines() if "clock skew" in line).split(" (")[0]  # noqa: E731
    assert skew(shown.stdout) == skew(expected)
    drop_skew = lambda text: [line for line in text.splitlines() if "clock skew" not in line]  # noqa: E731
    assert drop_skew(shown.stdout.rstrip("\n")) == drop_skew(expected)


def test_show_of_an_unknown_call_and_a_bad_query_are_one_line_errors(indexed: tuple[Path, str]) -> None:
    store, _ = indexed
    missing = kamlog("show", "no-such-call@nowhere", "--store", str(store))
    assert (missing.returncode, missing.stderr) == (2, "Error: no call with the Call-ID no-such-call@nowhere in the store\n")
    bad = kamlog("search", "log.level : (ERROR or", "--store", str(store))
    assert bad.returncode == 2 and bad.stderr.startswith("Error: ") and bad.stderr.count("\n") == 1
    assert "position" in bad.stderr


def test_a_file_that_is_not_a_store_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    done = kamlog("search", "", "--store", str(junk))
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {junk} is not a kamlog store") and done.stderr.count("\n") == 1
    nothing = kamlog("search", "", "--store", str(tmp_path / "none.db"))
    assert nothing.returncode == 1 and "no store at" in nothing.stderr
