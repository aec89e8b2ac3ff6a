"""The Correlator's live use (`kamlog collect`): records and log lines handed over as they arrive,
not merged in time, and calls finished by `expire` as the watermark passes them, give the same
calls as a batch run over the same real inputs (examples/: a real Kamailio run)."""

from __future__ import annotations

from kamlog.correlate.attribution import Placed
from kamlog.correlate.inputs import LogReader
from kamlog.correlate.timeline import CallTimeline, Correlator
from kamlog.parsing.options import ParseOptions
from kamlog.sources.pcap import CaptureReader
from tests.cli_helpers import ROOT

CAPTURE = str(ROOT / "examples" / "capture.pcap")
LOG = str(ROOT / "examples" / "kamailio.log")


def summary(items: list[CallTimeline | Placed]) -> tuple[dict[str, tuple[int, int]], int]:
    calls = {t.call_id: (len(t.messages), len(t.logs)) for t in items if isinstance(t, CallTimeline)}
    return calls, sum(1 for p in items if isinstance(p, Placed))


def batch() -> list[CallTimeline | Placed]:
    return list(Correlator().run(CaptureReader([CAPTURE]).records(), LogReader([LOG], ParseOptions())))


class TestLiveCorrelation:
    def test_logs_first_then_captures_then_expiry_gives_the_calls_of_a_batch_run(self) -> None:
        live = Correlator(skew_calls=20)
        out: list[CallTimeline | Placed] = []
        out += live.add(logs=LogReader([LOG], ParseOptions()))
        out += live.add(records=CaptureReader([CAPTURE]).records())
        last = max(t.last_ns for t in live.open.values())
        out += live.expire(last + 1)  # every call went quiet; the skew waits for more calls
        assert not live.open
        out += live.expire(last + 1 + live.idle_ns)  # waited an idle period: released
        assert summary(out) == summary(batch())
        assert live.skew is not None

    def test_a_call_stays_open_until_the_watermark_passes_its_last_event_by_the_timeout(self) -> None:
        live = Correlator(skew_calls=1)
        list(live.add(records=CaptureReader([CAPTURE]).records()))
        first_end = min(t.last_ns for t in live.open.values())
        assert not [t for t in live.expire(first_end) if isinstance(t, CallTimeline)]
        done = [t for t in live.expire(first_end + 1) if isinstance(t, CallTimeline)]
        assert len(done) >= 1 and all(t.last_ns <= first_end for t in done)

    def test_finish_gives_whatever_is_still_open(self) -> None:
        live = Correlator()
        list(live.add(logs=LogReader([LOG], ParseOptions())))
        out = list(live.add(records=CaptureReader([CAPTURE]).records())) + list(live.finish())
        assert summary(out) == summary(batch())
