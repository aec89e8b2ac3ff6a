"""Golden samples: real Kamailio output for every grammar, and what kamlog must make of it.

tests/grammars/<grammar>/<case>.log holds real lines (see README.md beside them);
<case>.log-expected.json is the parse, reviewed by hand. `pytest --update-goldens` rewrites
the expected files after an intended change: review the diff before committing.
"""

from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import pytest

from kamlog.correlate.clock import Clock
from kamlog.parsing.detect import detect
from kamlog.parsing.grammar import all_grammars, get_grammar, grammar_files
from kamlog.parsing.logline import LineParser

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SAMPLES = sorted(HERE.glob("*/*.log"))


def parse_sample(path: Path):
    grammar = get_grammar(path.parent.name)
    # RFC 3164 timestamps have no year nor zone: pin them so the goldens do not depend on mtime.
    parser = LineParser(grammar, str(path.relative_to(ROOT)), clock=Clock(year=2026, zone=timezone.utc))
    events = [*parser.feed(path.read_bytes(), 0), *parser.flush()]
    return events, parser.stats


def as_json(event) -> dict:
    values = event.as_dict()
    if values["timestamp"] is not None:
        values["timestamp"] = values["timestamp"].isoformat()
    return {k: v for k, v in values.items() if v is not None}


class TestGoldenSamples:
    def test_every_grammar_has_real_samples(self):
        for name in grammar_files():
            assert list((HERE / name).glob("*.log")), f"grammar {name} has no samples in tests/grammars/{name}/"

    def test_every_sample_directory_is_a_grammar(self):
        assert {p.parent.name for p in SAMPLES} <= set(grammar_files())

    def test_every_sample_is_described_in_the_readme(self):
        readme = (HERE / "README.md").read_text()
        for sample in SAMPLES:
            assert f"{sample.parent.name}/{sample.name}" in readme, sample

    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
    def test_the_sample_parses_as_recorded(self, sample, request):
        events, stats = parse_sample(sample)
        got = [as_json(e) for e in events]
        expected_path = sample.with_name(sample.name + "-expected.json")
        if request.config.getoption("--update-goldens"):
            expected_path.write_text("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in got) + "\n]\n")
        assert expected_path.exists(), f"run pytest --update-goldens to create {expected_path.name}"
        assert got == json.loads(expected_path.read_text())

    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
    def test_every_line_of_the_sample_is_parsed(self, sample):
        events, stats = parse_sample(sample)
        assert stats.unparsed == 0 and all(e.error is None for e in events)
        assert stats.records == len(events)
        assert stats.records + stats.continuation_lines + stats.blank + stats.other_program == stats.lines

    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
    def test_detection_picks_the_samples_grammar(self, sample):
        assert detect(sample.read_bytes(), all_grammars()).name == sample.parent.name


class TestDecoders:
    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
    def test_decoding_all_fields_at_once_equals_reading_each(self, sample):
        from kamlog.events import FIELDS

        events, _ = parse_sample(sample)
        for event in events:
            assert event.values() == tuple(getattr(event, name) for name in FIELDS)
