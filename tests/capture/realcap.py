"""What the capture tests share: real capturing programs (tcpdump, dumpcap) on loopback, SIP-looking
UDP traffic, tshark as the reference reading of a file, and small writers of pcap and pcapng
blocks, independent of kamlog's readers, to build the files no tool writes on Linux (big-endian,
BSD loopback, NFLOG, simple and obsolete packet blocks, ...).

Every program is started in its own session and stopped by its PID with bounded waits
(tests.corpus.runners.Process); every wait here has a timeout.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from kamlog.capture.decode import PacketDecoder
from kamlog.capture.files import open_capture
from kamlog.capture.packets import Frame, Payload
from tests.corpus.runners import Process, file_settled, wait_for

TOOLS = ("tcpdump", "tshark", "dumpcap", "editcap", "mergecap")


def need(*programs: str) -> pytest.MarkDecorator:
    missing = [p for p in programs if shutil.which(p) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (tests/run installs them)")


# ---------------------------------------------------------------------------------------------
# capturing


class Capture:
    """One capturing program writing ``path``; ready once it says it is capturing, stopped with
    SIGINT by PID once its file has stopped growing."""

    def __init__(self, workdir: Path, name: str, argv: Sequence[str], path: Path, ready: str) -> None:
        self.name = name
        self.path = path
        self.ready = ready
        self.stderr = workdir / f"{name}.stderr"
        self.process = Process(name, argv, cwd=workdir, stdout=workdir / f"{name}.stdout", stderr=self.stderr)

    def start(self) -> None:
        self.process.start()

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.process.check_running()
            return self.ready in self.stderr.read_text(errors="replace")

        wait_for(ready, timeout=15, what=f"{self.name} to start capturing")

    def stop(self) -> None:
        if self.process.running():
            settle = [self.path] if self.path.exists() else []
            if settle:
                file_settled(settle, quiet=0.3, timeout=10)
            self.process.stop(signal.SIGINT, timeout=10)


def tcpdump(workdir: Path, name: str, out: Path, bpf: str, *options: str, interface: str = "lo",
            netns: str | None = None) -> Capture:
    argv = ["tcpdump", "-i", interface, "-n", "--immediate-mode", "-U", "-B", "16384", "-Z", "root", *options,
            "-w", str(out), bpf]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return Capture(workdir, name, argv, out, "listening on")


def dumpcap(workdir: Path, name: str, out: Path, bpf: str, *interfaces: str, options: Sequence[str] = ()) -> Capture:
    argv = ["dumpcap", "-q"]
    for interface in interfaces:
        argv += ["-i", interface, "-f", bpf]
    return Capture(workdir, name, [*argv, *options, "-w", str(out)], out, "Capturing on")


class Captures:
    """Several captures started together (each waited for), stopped together."""

    def __init__(self, *captures: Capture) -> None:
        self.captures = captures

    def __enter__(self) -> Captures:
        try:
            for c in self.captures:
                c.start()
            for c in self.captures:
                c.wait_ready()
            # "listening" is printed as the capture opens; give the filters a moment to attach.
            time.sleep(0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.captures:
            try:
                c.stop()
            except Exception:  # noqa: BLE001 - stop the others anyway; the last one re-raises
                c.process.stop(signal.SIGKILL, timeout=5)


def free_udp_port() -> int:
    """A UDP port free on both 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6:
                    s6.bind(("::1", port))
                    return int(port)
            except OSError:
                continue
    raise RuntimeError("no UDP port free on both 127.0.0.1 and ::1")


def sip_text(call_id: str, body: int = 0, method: str = "OPTIONS") -> bytes:
    """A SIP-looking request; ``body`` bytes of SDP-like text make it as big as wanted."""
    payload = b"".join(b"a=x-kamlog-padding:%06d\r\n" % i for i in range(body // 26 + 1))[:body]
    head = (f"{method} sip:x@kamlog.test SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{call_id}\r\n"
            f"From: <sip:a@kamlog.test>;tag=1\r\nTo: <sip:x@kamlog.test>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


def send_udp(port: int, messages: Iterable[tuple[str, bytes]], pace: float = 0.002) -> None:
    """Send each (family "4" or "6", datagram) to 127.0.0.1 or ::1 at ``port``; a receiver bound
    there takes them (so the kernel answers no ICMP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r4, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as r6, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6:
        for r in (r4, r6):
            r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        r4.bind(("127.0.0.1", port))
        r6.bind(("::1", port))
        for family, data in messages:
            time.sleep(pace)  # paced: no capture's ring buffer overflows on a busy machine
            if family == "4":
                s4.sendto(data, ("127.0.0.1", port))
            else:
                s6.sendto(data, ("::1", port))


# ---------------------------------------------------------------------------------------------
# tshark, the reference


def tshark_fields(path: Path, fields: Sequence[str], *options: str, cut: bool = False) -> list[dict[str, str]]:
    """One dict per frame tshark reads in ``path``: each field's first occurrence ('' if none).
    ``cut``: the file is cut mid-record (tshark reads the frames before it, then fails)."""
    argv = ["tshark", "-n", "-r", str(path), *options, "-T", "fields", "-E", "separator=/t",
            "-E", "occurrence=f"]
    for f in fields:
        argv += ["-e", f]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if cut:
        assert "cut short in the middle of a packet" in run.stderr, run.stderr
    else:
        assert run.returncode == 0, f"tshark failed on {path}: {run.stderr}"
    return [dict(zip(fields, line.split("\t"))) for line in run.stdout.splitlines()]


def tshark_raw(path: Path) -> dict[int, bytes]:
    """{frame number: the frame's captured bytes} as tshark reads them."""
    run = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "json", "-x", "-j", "frame"],
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    out = {}
    for packet in json.loads(run.stdout):
        layers = packet["_source"]["layers"]
        number = int(layers["frame"]["frame.number"])
        out[number] = bytes.fromhex(layers["frame_raw"][0])
    return out


def epoch_ns(text: str) -> int:
    """tshark's frame.time_epoch ("1795871464.087402000") in nanoseconds, exactly."""
    return int(Decimal(text) * 1_000_000_000)


FRAME_FIELDS = ("frame.number", "frame.time_epoch", "frame.cap_len", "frame.len", "frame.protocols")
PAYLOAD_FIELDS = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport", "udp.payload")


def decode_all(frames: Iterable[Frame], decoder: PacketDecoder | None = None) -> tuple[list[Payload], PacketDecoder]:
    decoder = decoder or PacketDecoder()
    out: list[Payload] = []
    for frame in frames:
        out += decoder(frame)
    out += decoder.finish()
    return out, decoder


def assert_same_as_tshark(path: Path, *, raw: bool = True, times: bool = True,
                          records: Iterable[int] = ()) -> tuple[list[Frame], list[Payload]]:
    """kamlog's frames and UDP payloads of ``path`` equal tshark's: frame numbers, timestamps
    (exact to the file's resolution; ``times=False`` for simple packet blocks, which have none),
    captured and wire lengths, the frame bytes, addresses, ports and payload bytes. ``records``:
    the frame numbers tshark gives to pcapng records that are not packets (kamlog skips them).
    Returns kamlog's frames and payloads."""
    frames = list(open_capture(str(path)))
    ref = {int(r["frame.number"]): r for r in tshark_fields(path, (*FRAME_FIELDS, *PAYLOAD_FIELDS))}
    for number in records:
        del ref[number]
    assert [f.number for f in frames] == list(ref), f"{path}: frame numbers differ from tshark's"
    for frame in frames:
        row = ref[frame.number]
        assert frame.file == str(path)
        if times:
            assert frame.ts_ns == epoch_ns(row["frame.time_epoch"]), (frame.number, row["frame.time_epoch"])
        assert len(frame.data) == int(row["frame.cap_len"])
        assert frame.wire_len == int(row["frame.len"])
    if raw:
        tshark_bytes = tshark_raw(path)
        assert {f.number: f.data for f in frames} == {n: tshark_bytes[n] for n in ref}
    payloads, _ = decode_all(frames)
    by_frame = {p.frame: p for p in payloads}
    # UDP datagrams; not the UDP header an ICMP error quotes
    want = {number: r for number, r in ref.items()
            if (r["udp.payload"] or r["udp.srcport"]) and "icmp" not in r["frame.protocols"]}
    assert sorted(by_frame) == sorted(want), f"{path}: UDP frames differ from tshark's"
    ts = {f.number: f.ts_ns for f in frames}
    for number, row in want.items():
        p = by_frame[number]
        assert p.src_ip == (row["ip.src"] or row["ipv6.src"]), number
        assert p.dst_ip == (row["ip.dst"] or row["ipv6.dst"]), number
        assert (p.src_port, p.dst_port) == (int(row["udp.srcport"]), int(row["udp.dstport"])), number
        assert p.data == bytes.fromhex(row["udp.payload"]), number
        assert p.transport == "udp" and p.ts_ns == ts[number]
    return frames, payloads


# ---------------------------------------------------------------------------------------------
# writers, independent of kamlog's readers


def pcap_ipv4(path: Path) -> Iterator[tuple[int, int, int, str, int, str, int, int, int, bytes]]:
    """(frame, ts_ns, proto, src, sport, dst, dport, seq, flags, payload) of the UDP and TCP
    frames of a classic Ethernet pcap: a few lines, independent of kamlog's pcap reader."""
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    pos, number = 24, 0
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        number += 1
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl, total, proto = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0], ip[9]
        l4 = ip[ihl:total]
        sport, dport = struct.unpack("!HH", l4[:4])
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        ts_ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        if proto == 17:
            yield number, ts_ns, 17, src, sport, dst, dport, 0, 0, bytes(l4[8:])
        elif proto == 6:
            seq = struct.unpack("!I", l4[4:8])[0]
            yield number, ts_ns, 6, src, sport, dst, dport, seq, l4[13], bytes(l4[(l4[12] >> 4) * 4:])


def pcap_bytes(records: Iterable[tuple[int, bytes, int]], linktype: int, *, order: str = "<",
               nano: bool = False, snaplen: int = 262144) -> bytes:
    """A classic pcap of (ts_ns, captured bytes, wire length) records."""
    out = [struct.pack(order + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for ts_ns, data, wire in records:
        sec, ns = divmod(ts_ns, 1_000_000_000)
        out.append(struct.pack(order + "IIII", sec, ns if nano else ns // 1000, len(data), wire) + data)
    return b"".join(out)


def byteswap_pcap(data: bytes) -> bytes:
    """The same classic pcap in the other byte order (editcap writes only the host's)."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    other = ">" if order == "<" else "<"
    out = [struct.pack(other + "IHHiIII", *struct.unpack_from(order + "IHHiIII", data, 0))]
    pos = 24
    while pos + 16 <= len(data):
        fields = struct.unpack_from(order + "IIII", data, pos)
        out.append(struct.pack(other + "IIII", *fields) + data[pos + 16:pos + 16 + fields[2]])
        pos += 16 + fields[2]
    return b"".join(out)


def block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def options(order: str, *opts: bytes) -> bytes:
    return b"".join(opts) + (struct.pack(order + "HH", 0, 0) if opts else b"")


def shb(order: str, *opts: bytes) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options(order, *opts)
    return block(order, 0x0A0D0D0A, body)


def idb(order: str, linktype: int, snaplen: int = 262144, *opts: bytes) -> bytes:
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options(order, *opts))


def epb(order: str, iface: int, ts: int, data: bytes, wire: int | None = None) -> bytes:
    wire = len(data) if wire is None else wire
    return block(order, 6, struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wire) + data)


def opb(order: str, iface: int, ts: int, data: bytes) -> bytes:
    return block(order, 2, struct.pack(order + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)


def spb(order: str, data: bytes, wire: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data) if wire is None else wire) + data)


def pcapng_to_order(data: bytes, order: str) -> bytes:
    """A little-endian pcapng (what dumpcap writes) rewritten in ``order``: section, interface
    and enhanced packet blocks with their fields swapped (the interfaces keep if_tsresol and
    if_name); the other blocks, whose bodies this does not know, are left out."""
    out = []
    pos = 0
    src = "<"
    while pos + 12 <= len(data):
        kind, length = struct.unpack_from(src + "II", data, pos)
        body = data[pos + 8:pos + length - 4]
        if kind == 0x0A0D0D0A:
            out.append(shb(order))
        elif kind == 1:
            linktype, _r, snaplen = struct.unpack_from(src + "HHI", body, 0)
            keep = []
            p = 8
            while p + 4 <= len(body):
                code, olen = struct.unpack_from(src + "HH", body, p)
                if code == 0:
                    break
                if code in (2, 9):
                    keep.append(option(order, code, body[p + 4:p + 4 + olen]))
                p += 4 + olen + (-olen % 4)
            out.append(idb(order, linktype, snaplen, *keep))
        elif kind == 6:
            iface, hi, lo, caplen, wire = struct.unpack_from(src + "IIIII", body, 0)
            out.append(epb(order, iface, (hi << 32) | lo, body[20:20 + caplen], wire))
        pos += length
    return b"".join(out)
