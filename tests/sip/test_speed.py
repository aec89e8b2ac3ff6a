"""Prints how fast the parser is on the example capture's messages (a measurement, not a limit)."""

from __future__ import annotations

import time
from pathlib import Path

from kamlog.sip import parse_sip, sip_document

from .pcap_records import udp_payloads

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture.pcap"


def rate(function, items, seconds: float = 0.5) -> float:
    """Items per second, best of 3 rounds of at least `seconds` each."""
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for item in items:
                function(item)
            count += len(items)
        best = max(best, count / (time.perf_counter() - start))
    return best


class TestSpeed:
    def test_the_parse_rates_are_printed(self, capsys):
        payloads = udp_payloads(EXAMPLE)
        size = sum(len(p.data) for p in payloads) / len(payloads)
        eager = rate(parse_sip, payloads)

        def full(payload):
            msg = parse_sip(payload)
            return sip_document(msg)

        documents = rate(full, payloads)
        with capsys.disabled():
            print(f"\nSIP parse on {len(payloads)} real messages ({size:.0f} bytes on average): "
                  f"eager parse_sip {eager:,.0f} msg/s; parse_sip + sip_document {documents:,.0f} msg/s")
        assert eager > 0 and documents > 0
