"""Real IP fragments: two network namespaces joined by a veth pair at MTU 1500; big SIP INVITEs
sent over UDP (IPv4 and IPv6) from one side are fragmented by its kernel and captured on the
other side by tcpdump (Ethernet on the veth, Linux cooked v2 on ``-i any``). The reassembled
datagrams must equal what was sent and what tshark reassembles; a capture filtered on
``udp port 5060`` (which keeps only IPv4 first fragments) must have its datagrams reported
incomplete, with their frames."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kamlog.capture.files import open_capture
from tests.capture.realcap import (
    Captures, assert_same_as_tshark, decode_all, need, pcap_bytes, sip_text, tcpdump,
)

pytestmark = [pytest.mark.realworld, need("tcpdump", "tshark", "ip")]


@dataclass
class Veth:
    sender: str  # namespace names
    receiver: str
    device: str  # the receiver's end of the veth pair
    v4: tuple[str, str]  # (sender, receiver) addresses
    v6: tuple[str, str]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def veth() -> Iterator[Veth]:
    tag = os.getpid()
    ns_a, ns_b = f"kamlog-rx-{tag}", f"kamlog-tx-{tag}"
    dev_a, dev_b = f"klrx{tag}"[:15], f"kltx{tag}"[:15]
    made = []
    try:
        for ns in (ns_a, ns_b):
            done = _ip("netns", "add", ns)
            if done.returncode != 0:
                pytest.skip(f"cannot create a network namespace (needs root and netns support): {done.stderr.strip()}")
            made.append(ns)
        steps = [
            ("link", "add", dev_a, "type", "veth", "peer", "name", dev_b),
            ("link", "set", dev_a, "netns", ns_a),
            ("link", "set", dev_b, "netns", ns_b),
            ("-n", ns_a, "addr", "add", "169.254.77.1/24", "dev", dev_a),
            ("-n", ns_b, "addr", "add", "169.254.77.2/24", "dev", dev_b),
            ("-n", ns_a, "addr", "add", "fd00:77::1/64", "dev", dev_a, "nodad"),
            ("-n", ns_b, "addr", "add", "fd00:77::2/64", "dev", dev_b, "nodad"),
            ("-n", ns_a, "link", "set", dev_a, "mtu", "1500", "up"),
            ("-n", ns_b, "link", "set", dev_b, "mtu", "1500", "up"),
            ("-n", ns_a, "link", "set", "lo", "up"),
            ("-n", ns_b, "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _ip(*step)
            if done.returncode != 0:
                pytest.skip(f"cannot set up a veth pair (ip {' '.join(step)}): {done.stderr.strip()}")
        yield Veth(ns_b, ns_a, dev_a, ("169.254.77.2", "169.254.77.1"), ("fd00:77::2", "fd00:77::1"))
    finally:
        for ns in made:  # deleting a namespace deletes its end of the veth, and so the pair
            _ip("netns", "del", ns)


SENDER = textwrap.dedent("""
    import socket, sys, time
    port = int(sys.argv[1])
    for family, host, text in zip(sys.argv[2::3], sys.argv[3::3], sys.argv[4::3]):
        fam = socket.AF_INET if family == "4" else socket.AF_INET6
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.sendto(bytes.fromhex(text), (host, port))
        time.sleep(0.02)
""")


@dataclass
class FragmentCaptures:
    dir: Path
    sent: list[tuple[str, bytes]]
    full: Path  # tcpdump -i <veth>, no filter
    any: Path  # tcpdump -i any in the receiver's namespace
    filtered: Path  # tcpdump -i <veth> 'udp port 5060'


@pytest.fixture(scope="module")
def captures(veth: Veth, tmp_path_factory: pytest.TempPathFactory) -> FragmentCaptures:
    workdir = tmp_path_factory.mktemp("fragments")
    full, anyf, filtered = workdir / "veth.pcap", workdir / "any.pcap", workdir / "filtered.pcap"
    ns = veth.receiver
    sent = []
    for i in range(3):
        sent.append(("4", sip_text(f"big-{i}-v4@kamlog.test", body=3800, method="INVITE")))
        sent.append(("6", sip_text(f"big-{i}-v6@kamlog.test", body=3800, method="INVITE")))
    sent.append(("4", sip_text("small-v4@kamlog.test")))
    sent.append(("6", sip_text("small-v6@kamlog.test")))
    argv = [sys.executable, "-c", SENDER, "5060"]
    for family, data in sent:
        argv += [family, veth.v4[1] if family == "4" else veth.v6[1], data.hex()]
    with Captures(
        tcpdump(workdir, "veth", full, "ip or ip6", interface=veth.device, netns=ns),
        tcpdump(workdir, "any", anyf, "ip or ip6", interface="any", netns=ns),
        tcpdump(workdir, "filtered", filtered, "udp port 5060", interface=veth.device, netns=ns),
    ):
        done = subprocess.run(["ip", "netns", "exec", veth.sender, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    return FragmentCaptures(workdir, sent, full, anyf, filtered)


@pytest.mark.parametrize("which", ["full", "any"])
def test_real_fragments_reassemble_as_sent_and_as_tshark_does(captures: FragmentCaptures, which: str) -> None:
    path = getattr(captures, which)
    frames, payloads = assert_same_as_tshark(path)
    assert {f.linktype for f in frames} == ({1} if which == "full" else {276})
    udp = [p for p in payloads if p.dst_port == 5060]
    assert sorted(p.data for p in udp) == sorted(d for _f, d in captures.sent)
    _, decoder = decode_all(frames)
    big = [p for p in udp if len(p.data) > 1500]
    assert len(big) == 6 and all(len(p.parts) == 2 for p in big)
    assert {p.src_ip for p in big} == {"169.254.77.2", "fd00:77::2"}
    assert decoder.stats.reassembled == 6 and decoder.stats.fragments == 18
    assert decoder.stats.incomplete_fragment_sets == 0 and decoder.notes() == []


def test_real_fragments_out_of_order(captures: FragmentCaptures, tmp_path: Path) -> None:
    """The captured frames, shuffled and written to a new file: the same datagrams, still as
    tshark reassembles them."""
    frames = list(open_capture(str(captures.full)))
    order = frames[:]
    random.Random(5060).shuffle(order)
    path = tmp_path / "shuffled.pcap"
    path.write_bytes(pcap_bytes([(f.ts_ns, f.data, f.wire_len) for f in order], 1, nano=True))
    _, payloads = assert_same_as_tshark(path)
    udp = [p for p in payloads if p.dst_port == 5060]
    assert sorted(p.data for p in udp) == sorted(d for _f, d in captures.sent)


def test_a_port_filter_keeps_first_fragments_only_and_they_are_reported(captures: FragmentCaptures) -> None:
    frames = list(open_capture(str(captures.filtered)))
    payloads, decoder = decode_all(frames)
    # The small datagrams are whole; of the big IPv4 ones only the first fragments were kept (the
    # filter cannot see the ports of later fragments, nor of any IPv6 fragment).
    assert sorted(p.data for p in payloads) == sorted(d for _f, d in captures.sent if len(d) < 1400)
    firsts = [f.number for f in frames if len(f.data) > 1400]
    assert len(firsts) == 3
    assert decoder.stats.incomplete_fragment_sets == 3
    [note] = decoder.notes()
    assert note.startswith("3 fragmented datagrams incomplete")
    assert "a capture filter on ports keeps only first fragments" in note
    assert f"{captures.filtered} frames {', '.join(map(str, firsts))}" in note
