"""Document ids: each source file's identity, read once, or told by the service."""

from __future__ import annotations

from hashlib import blake2b
from pathlib import Path

from kamlog.store.documents import Identities


class TestIdentities:
    def test_a_capture_is_identified_by_its_first_512_bytes_read_once(self, tmp_path: Path) -> None:
        path = tmp_path / "sip.pcap"
        path.write_bytes(bytes(range(256)) * 3)
        identities = Identities()
        first = identities(str(path), True)
        path.write_bytes(b"another capture")
        assert first == identities(str(path), True) == blake2b(bytes(range(256)) * 2, digest_size=16).digest()

    def test_set_gives_a_path_the_identity_the_service_knows_it_now_has(self, tmp_path: Path) -> None:
        # tcpdump -W rewrites sip.pcap0 in place: the cached identity would be the previous capture's.
        path = tmp_path / "sip.pcap0"
        path.write_bytes(b"the previous capture")
        identities = Identities()
        identities(str(path), True)
        identities.set(str(path), b"the next capture")
        assert identities(str(path), True) == b"the next capture"

    def test_set_is_taken_before_the_file_is_read(self, tmp_path: Path) -> None:
        identities = Identities()
        identities.set(str(tmp_path / "gone.pcap"), b"known")
        assert identities(str(tmp_path / "gone.pcap"), True) == b"known"
