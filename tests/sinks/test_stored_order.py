"""A call's stored documents in timeline order, when the call has several timelines: two nodes
that each saw it, or lines that came after it was stored."""

from __future__ import annotations

from typing import Any

from kamlog.sinks.stored import in_order


def doc(timeline: str, sequence: int, second: int, name: str) -> dict[str, Any]:
    return {"kamlog.timeline": timeline, "kamlog.sequence": sequence, "name": name,
            "@timestamp": f"2026-11-28T10:00:{second:02d}.000000Z"}


class TestInOrder:
    def test_one_timeline_keeps_its_sequence_even_against_its_timestamps(self) -> None:
        # A whole-second line placed after the message it was written about.
        docs = [doc("a", 1, 5, "line"), doc("a", 0, 6, "INVITE")]
        assert [d["name"] for d in in_order(docs)] == ["INVITE", "line"]

    def test_two_nodes_timelines_are_merged_by_time_each_keeping_its_order(self) -> None:
        node_a = [doc("a", 0, 1, "A INVITE in"), doc("a", 1, 2, "A INVITE out"), doc("a", 2, 7, "A 200 in")]
        node_b = [doc("b", 0, 3, "B INVITE in"), doc("b", 1, 6, "B 200 out")]
        merged = in_order([*reversed(node_b), *reversed(node_a)])
        assert [d["name"] for d in merged] == ["A INVITE in", "A INVITE out", "B INVITE in", "B 200 out", "A 200 in"]

    def test_documents_without_a_timeline_field_are_one_timeline(self) -> None:
        docs = [{"kamlog.sequence": 2, "name": "c"}, {"kamlog.sequence": 0, "name": "a"}, {"kamlog.sequence": 1, "name": "b"}]
        assert [d["name"] for d in in_order(docs)] == ["a", "b", "c"]
