"""The registry: acknowledged offsets by identity, flushed atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kamlog.tail import FileIdentity, Registry, RegistryError


def ident(inode: int, fingerprint: str = "3:abc") -> FileIdentity:
    return FileIdentity(device=1, inode=inode, fingerprint=fingerprint)


class TestRegistry:
    def test_an_acknowledged_offset_is_read_back_after_a_flush(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.json"
        registry = Registry(path)
        registry.ack(ident(7), "/var/log/kamailio.log", 4096)
        registry.flush()
        entry = Registry(path).get((1, 7))
        assert entry is not None
        assert (entry.identity, entry.path, entry.offset) == (ident(7), "/var/log/kamailio.log", 4096)

    def test_nothing_is_written_before_a_flush(self, tmp_path: Path) -> None:
        registry = Registry(tmp_path / "registry.json")
        registry.ack(ident(7), "a.log", 10)
        assert not (tmp_path / "registry.json").exists()

    def test_the_latest_acknowledgement_wins_even_when_lower(self, tmp_path: Path) -> None:
        registry = Registry(tmp_path / "registry.json")
        registry.ack(ident(7, "3:old"), "a.log", 1000)
        registry.ack(ident(7, "5:new"), "a.log", 20)
        entry = registry.get((1, 7))
        assert entry is not None and (entry.offset, entry.identity.fingerprint) == (20, "5:new")

    def test_the_file_is_replaced_atomically_and_no_temporary_file_is_left(self, tmp_path: Path) -> None:
        registry = Registry(tmp_path / "registry.json")
        for offset in range(3):
            registry.ack(ident(7), "a.log", offset)
            registry.flush()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json"]
        assert json.loads((tmp_path / "registry.json").read_text())["entries"][0]["offset"] == 2

    def test_the_least_recently_acknowledged_files_are_dropped_beyond_the_limit(self, tmp_path: Path) -> None:
        registry = Registry(tmp_path / "registry.json", max_entries=2)
        for inode in (1, 2, 3):
            registry.ack(ident(inode), f"{inode}.log", 0)
        registry.ack(ident(2), "2.log", 5)
        registry.ack(ident(4), "4.log", 0)
        assert [e.identity.inode for e in registry] == [2, 4]

    def test_a_corrupt_registry_is_an_error_naming_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.json"
        path.write_text("{not json")
        with pytest.raises(RegistryError, match="cannot read the registry .*registry.json"):
            Registry(path)

    def test_a_registry_of_another_format_is_an_error(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.json"
        path.write_text('{"version": 99, "entries": []}')
        with pytest.raises(RegistryError, match="not a version 1 kamlog registry"):
            Registry(path)
