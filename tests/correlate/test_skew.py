"""The clock skew estimate from per-message bounds."""

from __future__ import annotations

from kamlog.correlate.skew import estimate


class TestSkew:
    def test_the_estimate_is_a_low_quantile_of_the_bounds(self) -> None:
        bounds = [5_000 + n * 10 for n in range(100)]
        assert estimate(bounds, 1000).offset_ns == 5_010

    def test_one_stray_low_pair_does_not_move_the_estimate(self) -> None:
        bounds = [-9_000_000_000] + [200_000 + n for n in range(200)]
        assert estimate(bounds, 1000).offset_ns > 0

    def test_no_pairs_means_no_skew_and_says_so(self) -> None:
        skew = estimate([], 1000)
        assert skew.offset_ns == 0 and skew.pairs == 0
        assert skew.text().startswith("unknown")

    def test_the_text_gives_sign_seconds_and_how_many_messages(self) -> None:
        assert estimate([-1_500_000], 1000).text() == "-0.001500 s (log clock minus capture clock, from 1 message)"
        assert estimate([2_000_000_000], 1_000_000_000).text().startswith("+2.000 s")
