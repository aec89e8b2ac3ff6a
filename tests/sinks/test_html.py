"""`kamlog correlate --format html`: the report of real Kamailio runs, opened in a real headless
Chromium that clicks in it and reads what it shows."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamlog.correlate.attribution import Placed
from kamlog.correlate.inputs import classify
from kamlog.correlate.run import Summary, correlate
from kamlog.correlate.skew import Skew
from kamlog.correlate.timeline import CallTimeline
from kamlog.parsing.options import ParseOptions
from kamlog.sinks.html import HtmlWriter
from tests.capture.realcap import pcap_ipv4
from tests.cli_helpers import ROOT, kamlog
from tests.sinks.browser import Chromium, need_chromium

EXAMPLES = ROOT / "examples"
QUOTED = 'call-"quoted"-1@kamlog.test'


def report(out: Path, *inputs: Path | str) -> Path:
    done = kamlog("correlate", "--format", "html", "-o", str(out), *map(str, inputs), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kamlog: wrote " in done.stderr
    return out


def first_message(capture: Path, call_id: str) -> str:
    """The first SIP message of a call in the capture, read without kamlog."""
    for *_, payload in pcap_ipv4(capture):
        text = payload.decode("utf-8", "replace")
        if f"\r\nCall-ID: {call_id}\r\n" in text:
            return text
    raise AssertionError(f"no message of {call_id} in {capture}")


def section_of(call_id: str) -> str:
    """JavaScript: the call's section, found by the Call-ID its heading shows."""
    return (f"[...document.querySelectorAll('section.call')].find(s => s.querySelector('h2 code').textContent"
            f" === {json.dumps(call_id)})")


def visible_levels() -> str:
    """JavaScript: how many log lines of each level class are shown and hidden."""
    return ("(() => { const n = {}; for (const e of document.querySelectorAll('.log')) {"
            " const lv = [...e.classList].find(c => c.startsWith('lv'));"
            " const k = lv + (e.offsetParent === null ? ':hidden' : ':shown'); n[k] = (n[k] || 0) + 1; }"
            " return n; })()")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    with Chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def example_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report(tmp_path_factory.mktemp("html") / "report.html", EXAMPLES / "capture.pcap", EXAMPLES / "kamailio.log")


@pytest.fixture(scope="module")
def corpus_report(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report(tmp_path_factory.mktemp("html") / "report.html", corpus / "capture.pcap", corpus / "syslog-rfc3339.log")


@need_chromium()
class TestHtmlReportInChromium:
    def test_the_call_list_names_every_call_and_links_to_its_section(self, browser: Chromium, corpus: Path,
                                                                     corpus_report: Path) -> None:
        expected = [s["call_id"] for s in json.loads((corpus / "manifest.json").read_text())["scenarios"]]
        browser.open(corpus_report.as_uri())
        listed = browser.evaluate("[...document.querySelectorAll('#list tbody tr')].map(tr => "
                                  "[tr.querySelector('code').textContent, tr.querySelector('a').getAttribute('href')])")
        assert sorted(call_id for call_id, _ in listed) == sorted(expected)
        for call_id, href in listed:
            assert browser.evaluate(f"document.querySelector('{href} h2 code').textContent") == call_id
        # The list is written last but shown first, above the calls.
        assert browser.evaluate("document.getElementById('list').getBoundingClientRect().top"
                                " < document.querySelector('section.call').getBoundingClientRect().top")

    def test_clicking_a_message_shows_its_raw_sip(self, browser: Chromium, example_report: Path,
                                                 tmp_path: Path) -> None:
        call_id = "call-completed-1@kamlog.test"
        raw = first_message(EXAMPLES / "capture.pcap", call_id)
        browser.open(example_report.as_uri())
        assert browser.evaluate("document.getElementById('raw').hidden") is True
        index = browser.evaluate(f"[...document.querySelectorAll('.msg')].indexOf({section_of(call_id)}"
                                 ".querySelector('.msg'))")
        browser.click(".msg", index)
        assert browser.evaluate("document.getElementById('raw').hidden") is False
        shown = browser.evaluate("document.querySelector('#raw pre').innerText")
        assert shown.splitlines()[0] == raw.split("\r\n")[0] == "INVITE sip:answer@kamlog.test SIP/2.0"
        assert f"Call-ID: {call_id}" in shown.splitlines()
        assert shown.replace("\n", "\r\n").rstrip() == raw.rstrip()
        assert browser.evaluate(f"{section_of(call_id)}.querySelector('.msg').classList.contains('selected')")
        shot = browser.screenshot(tmp_path / "clicked-invite.png")
        print(f"screenshot: {shot}")
        browser.click("#raw-close")
        assert browser.evaluate("document.getElementById('raw').hidden") is True

    def test_a_call_id_with_quotes_is_shown_as_it_is(self, browser: Chromium, corpus: Path,
                                                    corpus_report: Path) -> None:
        browser.open(corpus_report.as_uri())
        assert QUOTED in browser.evaluate("[...document.querySelectorAll('#list tbody code')].map(c => c.textContent)")
        index = browser.evaluate(f"[...document.querySelectorAll('.msg')].indexOf({section_of(QUOTED)}"
                                 ".querySelector('.msg'))")
        assert index >= 0
        browser.click(".msg", index)
        shown = browser.evaluate("document.querySelector('#raw pre').innerText").splitlines()
        assert f"Call-ID: {QUOTED}" in shown
        assert shown[0] == first_message(corpus / "capture.pcap", QUOTED).split("\r\n")[0]

    def test_choosing_a_level_hides_the_log_lines_below_it(self, browser: Chromium, corpus_report: Path,
                                                          tmp_path: Path) -> None:
        browser.open(corpus_report.as_uri())
        before = browser.evaluate(visible_levels())
        assert before["lv3:shown"] > 1000 and before["lv2:shown"] > 10 and before["lv-1:shown"] > 0
        assert not [k for k in before if k.endswith(":hidden")]
        browser.click('#levels input[value="-1"]')
        after = browser.evaluate(visible_levels())
        assert "lv3:shown" not in after and "lv2:shown" not in after and "lv0:shown" not in after
        assert after["lv3:hidden"] == before["lv3:shown"] and after["lv2:hidden"] == before["lv2:shown"]
        assert after["lv-1:shown"] == before["lv-1:shown"] and after["lv-5:shown"] == before["lv-5:shown"]
        assert "lv-1:hidden" not in after
        browser.evaluate(f"{section_of('call-completed-1@kamlog.test')}.scrollIntoView()")
        print(f"screenshot: {browser.screenshot(tmp_path / 'errors-only.png')}")
        browser.click('#levels input[value=""]')
        assert browser.evaluate(visible_levels()) == before

    def test_log_levels_have_the_colours_of_kamailio_e(self, browser: Chromium, example_report: Path) -> None:
        browser.open(example_report.as_uri())
        colour = ("(cls) => { const e = document.querySelector('.log.' + cls + ' .lvl'); const s = getComputedStyle(e);"
                  " return [e.textContent, s.color, s.fontWeight]; }")
        assert browser.evaluate(f"({colour})('lv-1')") == ["ERROR", "rgb(192, 28, 40)", "400"]  # 0;31
        assert browser.evaluate(f"({colour})('lv-5')") == ["ALERT", "rgb(192, 28, 40)", "700"]  # 1;31
        assert browser.evaluate(f"({colour})('lv1')") == ["NOTICE", "rgb(38, 162, 105)", "400"]  # 0;32

    def test_the_report_fetches_nothing(self, browser: Chromium, corpus_report: Path) -> None:
        text = corpus_report.read_text()
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", text, re.I)
        assert "http://" not in text and "https://" not in text
        assert "default-src 'none'" in text
        browser.open(corpus_report.as_uri())
        assert browser.evaluate("performance.getEntriesByType('resource').length") == 0


class TestHtmlReportFile:
    def test_lines_placed_on_no_call_are_listed_after_the_calls(self, corpus: Path, corpus_report: Path) -> None:
        text = kamlog("correlate", str(corpus / "capture.pcap"), str(corpus / "syslog-rfc3339.log"), timeout=120)
        count = int(re.search(r"^Not placed on any call: (\d+) log lines", text.stdout, re.M)[1])  # type: ignore[index]
        page = corpus_report.read_text()
        section = page[page.index('<section id="unattributed">'):page.index('<section id="list">')]
        assert f"<h2>Not placed on any call: {count} log lines</h2>" in section
        assert section.count('<div class="row log ') == count
        assert page.index('<main id="calls">') < page.index('<section id="unattributed">')

    def test_unattributed_lines_past_the_cap_are_counted_not_listed(self, corpus: Path) -> None:
        stream = io.BytesIO()
        summary = correlate(classify([str(corpus / "capture.pcap")], [str(corpus / "syslog-rfc3339.log")], []),
                            ParseOptions(), HtmlWriter(stream, None, shown=100))
        page = stream.getvalue().decode()
        loose = summary.attribution["unattributed"]
        assert f"<p>The first 100 are shown; {loose - 100} more are not.</p>" in page
        section = page[page.index('<section id="unattributed">'):page.index('<section id="list">')]
        assert section.count('<div class="row log ') == 100

    def test_each_call_is_written_when_it_arrives(self) -> None:
        stream = io.BytesIO()
        html = HtmlWriter(stream)
        seen: list[tuple[str, bytes]] = []

        class Recording:
            def call(self, timeline: CallTimeline) -> None:
                html.call(timeline)
                seen.append((timeline.call_id, stream.getvalue()))

            def unattributed(self, placed: Placed, skew: Skew) -> None:
                html.unattributed(placed, skew)

            def close(self, summary: Summary) -> None:
                html.close(summary)

        correlate(classify([str(EXAMPLES / "capture.pcap")], [str(EXAMPLES / "kamailio.log")], []),
                  ParseOptions(), Recording())
        assert len(seen) == 8
        for call_id, written in seen:
            assert written.rstrip().endswith(b"</section>")
            assert f"<h2>Call <code>{call_id}</code></h2>".encode() in written
        assert b'<section id="list">' not in seen[-1][1] and b'<section id="list">' in stream.getvalue()

    def test_a_level_leaves_out_the_lower_lines_and_their_choices(self, tmp_path: Path) -> None:
        done = kamlog("correlate", "--format", "html", "--level", "ERR", "-o", str(tmp_path / "r.html"),
                      str(EXAMPLES / "capture.pcap"), str(EXAMPLES / "kamailio.log"))
        assert done.returncode == 0, done.stderr
        page = (tmp_path / "r.html").read_text()
        classes = set(re.findall(r'<div class="row log (lv\S+?)[ "]', page))
        assert classes == {"lv-1", "lv-2", "lv-3", "lv-4", "lv-5"}
        assert re.findall(r'name="level" value="([^"]*)"', page) == ["-1", "-2", "-3", "-4", "-5"]
        assert '<div id="report" data-level="-1">' in page

    def test_quotes_and_markup_in_a_call_id_are_escaped(self, corpus_report: Path) -> None:
        page = corpus_report.read_text()
        assert "<code>call-&quot;quoted&quot;-1@kamlog.test</code>" in page
        assert QUOTED not in page


class TestHtmlCommand:
    def test_html_without_an_output_file_is_a_usage_error(self) -> None:
        done = kamlog("correlate", "--format", "html", str(EXAMPLES / "capture.pcap"), str(EXAMPLES / "kamailio.log"))
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == "Error: --format html writes a file: name it with -o report.html\n"

    def test_html_to_stdout_is_a_usage_error_too(self) -> None:
        done = kamlog("correlate", "--format", "html", "-o", "-", str(EXAMPLES / "capture.pcap"))
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == "Error: --format html writes a file: name it with -o report.html\n"

