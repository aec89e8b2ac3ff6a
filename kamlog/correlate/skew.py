"""The offset between the log's clock and the capture's, from messages seen on both sides.

For a SIP message that Kamailio received, the capture has the packet's time `c` and the log
the time `t` of the first line written about it, cut to the log's resolution `r` (1 s for
traditional syslog, 1 µs for RFC 3339). The line was written after the packet arrived, so
`offset <= t + r - c` for every pair: each pair is an upper bound, and the lowest bounds are
the tight ones (pairs matched to an earlier packet of the same key only loosen their bound).
The estimate is a low quantile of the bounds rather than their minimum, so that one stray
pair cannot move it.
"""

from __future__ import annotations

from dataclasses import dataclass

QUANTILE = 0.02


@dataclass(frozen=True)
class Skew:
    """Log clock minus capture clock, in ns; `pairs` is how many messages it rests on."""

    offset_ns: int
    pairs: int
    resolution_ns: int

    def text(self) -> str:
        if not self.pairs:
            return "unknown (no message seen both in the log and in the capture)"
        sign = "+" if self.offset_ns >= 0 else "-"
        value = abs(self.offset_ns) / 1e9
        digits = 0 if self.resolution_ns >= 1_000_000_000 else 6
        shown = f"{sign}{value:.{max(digits, 3)}f} s"
        messages = "message" if self.pairs == 1 else "messages"
        return f"{shown} (log clock minus capture clock, from {self.pairs} {messages})"


NO_SKEW = Skew(0, 0, 1000)


def estimate(bounds: list[int], resolution_ns: int) -> Skew:
    """The offset from the per-message upper bounds `t + r - c` (in ns)."""
    if not bounds:
        return Skew(0, 0, resolution_ns)
    ordered = sorted(bounds)
    return Skew(ordered[int(QUANTILE * (len(ordered) - 1))], len(ordered), resolution_ns)
