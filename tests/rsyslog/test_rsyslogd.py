"""The generated files as the real rsyslogd and logrotate read them: `rsyslogd -N1` and
`logrotate -d` accept them, a private rsyslogd routes each kind of tag and facility where the
drop-in says, and forwards to a listener over UDP and TCP without being held up when it is down."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.corpus.runners import LOOPBACK, free_port, wait_for
from tests.rsyslog.helpers import (
    LOGROTATE, PRECISE_LINE, TRADITIONAL_LINE, RsyslogWithDropIn, check_config, generate, lines_of, logger, parsed,
    tag_of,
)

pytestmark = pytest.mark.realworld

COMBINATIONS = {
    "precise": (),
    "traditional": ("--traditional",),
    "forward-udp": ("--forward", "udp://127.0.0.1:5514"),
    "forward-tcp": ("--forward", "tcp://[::1]:6514", "--traditional"),
    "forward-tcp-name": ("--forward", "tcp://kamlog.example:514", "--program", "sbc", "--facility", "local7"),
    "postrotate": ("--postrotate", "kill -HUP $(cat /run/rsyslogd.pid)", "--file", "/srv/log/kamailio/sip.log"),
}


class TestConfigCheck:
    @pytest.mark.parametrize("args", COMBINATIONS.values(), ids=COMBINATIONS.keys())
    def test_rsyslogd_accepts_the_drop_in_without_a_warning(self, args, tmp_path):
        generated = generate(tmp_path / "out", *args)
        result = check_config(tmp_path, generated.drop_in)
        assert (result.returncode, result.stdout) == (0, ""), result.stderr
        assert re.fullmatch(
            rf"rsyslogd: version [\d.]+, config validation run \(level 1\), master config {tmp_path}/rsyslog.conf\n"
            r"rsyslogd: End of config validation run. Bye.\n", result.stderr), result.stderr

    def test_rsyslogd_would_say_so_if_a_drop_in_were_wrong(self, tmp_path):
        generated = generate(tmp_path / "out", "--forward", "tcp://127.0.0.1:6514")
        generated.drop_in.write_text(generated.drop_in.read_text().replace("TCP_Framing", "TCP_Framming"))
        result = check_config(tmp_path, generated.drop_in)
        assert result.returncode == 1
        assert "parameter 'TCP_Framming' not known" in result.stderr

    @pytest.mark.parametrize("args", COMBINATIONS.values(), ids=COMBINATIONS.keys())
    def test_logrotate_reads_the_logrotate_file_without_an_error(self, args, tmp_path):
        generated = generate(tmp_path / "out", *args)
        result = subprocess.run([LOGROTATE, "-d", "-s", str(tmp_path / "state"), str(generated.logrotate)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "error" not in result.stderr.lower()
        assert "rotating pattern: " in result.stderr


# (tag, facility, with a [pid], where it must land): "file" is the drop-in's file, "general"
# the catch-all that stands for /var/log/syslog.
ROUTES = {
    "default": ((), [
        ("kamailio", "local0", True, "file"),
        ("kamailio", "daemon", True, "file"),  # log_name, another facility (xlog's own)
        ("kamailio", "daemon", False, "file"),  # before openlog(): glibc's `kamailio:`
        ("/usr/sbin/kamailio", "daemon", True, "file"),  # no log_name: $programname is empty
        ("/usr/local/sbin/kamailio", "user", True, "file"),
        ("cron", "local0", True, "file"),  # the facility is Kamailio's alone
        ("cron", "cron", True, "general"),
        ("kamailio2", "daemon", True, "general"),
        ("/usr/sbin/kamailio-helper", "daemon", True, "general"),
        ("sbc", "daemon", True, "general"),
    ]),
    "program-sbc": (("--program", "sbc", "--facility", "local7", "--traditional"), [
        ("sbc", "daemon", True, "file"),
        ("sbc", "local7", True, "file"),
        ("cron", "local7", True, "file"),
        ("kamailio", "daemon", False, "file"),
        ("/usr/sbin/kamailio", "daemon", True, "file"),
        ("cron", "local0", True, "general"),
        ("sbc2", "daemon", True, "general"),
    ]),
}


class TestRouting:
    @pytest.mark.parametrize(("args", "routes"), ROUTES.values(), ids=ROUTES.keys())
    def test_each_message_lands_in_the_file_or_the_general_log_as_its_tag_and_facility_say(self, args, routes,
                                                                                              tmp_path):
        dedicated = tmp_path / "log" / "kamailio.log"
        generated = generate(tmp_path / "out", "--file", str(dedicated), *args)
        with RsyslogWithDropIn(tmp_path, generated.drop_in, dedicated) as rsyslog:
            for n, (tag, facility, pid, _) in enumerate(routes):
                logger(rsyslog.socket_path, tag, facility, f"route probe {n}", pid=pid)
        # Stopped: rsyslogd has written everything it received.
        found = {"file": lines_of(dedicated), "general": lines_of(rsyslog.general)}
        for n, (tag, facility, pid, where) in enumerate(routes):
            holding = {name for name, lines in found.items() if any(line.endswith(f" route probe {n}") for line in lines)}
            assert holding == {where}, (tag, facility, pid)
        shape = TRADITIONAL_LINE if "--traditional" in args else PRECISE_LINE
        assert all(shape.match(line) for line in found["file"]), found["file"]
        assert not [line for line in found["file"] if tag_of(line) == "rsyslogd"]


class Listener:
    """A syslog receiver on loopback: UDP datagrams, or TCP with octet-counted frames (RFC 6587),
    collected in a thread until :meth:`close`."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.port = free_port()
        self.messages: list[str] = []
        self._stop = threading.Event()
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind((LOOPBACK, self.port))
        self.sock.settimeout(0.1)
        if protocol == "tcp":
            self.sock.listen()
        self.thread = threading.Thread(target=self._udp if protocol == "udp" else self._tcp, daemon=True)
        self.thread.start()

    def _udp(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.sock.recv(65536).decode())

    def _tcp(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.1)
            with conn:
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    buffer += data
                    while b" " in buffer:
                        length, rest = buffer.split(b" ", 1)
                        assert length.isdigit(), buffer[:80]
                        if len(rest) < int(length):
                            break
                        self.messages.append(rest[:int(length)].decode())
                        buffer = rest[int(length):]
        assert buffer == b""

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def listening(protocol: str) -> Iterator[Listener]:
    listener = Listener(protocol)
    try:
        yield listener
    finally:
        listener.close()


def send(socket_path: Path, count: int, tag: str = "kamailio[4242]") -> None:
    """``count`` messages in syslog(3)'s local format, as Kamailio logs them (level, prefix with
    the Call-ID, module), straight to rsyslog's socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for n in range(count):
            stamp = time.strftime("%b %e %H:%M:%S")
            s.sendto(f"<134>{stamp} {tag}: INFO: {{1 1 INVITE fwd-{n}@kamlog.test}} <script>: forwarded {n}".encode(),
                     str(socket_path))


class TestForwarding:
    @pytest.mark.parametrize("protocol", ["udp", "tcp"])
    def test_the_listener_gets_every_message_in_rfc_5424_form_that_kamlog_reads(self, protocol, tmp_path):
        dedicated = tmp_path / "log" / "kamailio.log"
        with listening(protocol) as listener:
            generated = generate(tmp_path / "out", "--file", str(dedicated),
                                 "--forward", f"{protocol}://{LOOPBACK}:{listener.port}")
            with RsyslogWithDropIn(tmp_path, generated.drop_in, dedicated) as rsyslog:
                send(rsyslog.socket_path, 50)
                wait_for(lambda: len(listener.messages) >= 50, timeout=10, what="50 forwarded messages")
        assert len(listener.messages) == 50
        received = tmp_path / "received.log"
        received.write_text("".join(listener.messages))
        records = parsed(received)
        assert {r["kamailio.grammar"] for r in records} == {"kamailio-syslog-rfc5424"}
        assert [(r["process.name"], r["process.pid"], r["log.level"], r["sip.call_id"], r["message"]) for r in records] == [
            ("kamailio", 4242, "INFO", f"fwd-{n}@kamlog.test", f"forwarded {n}") for n in range(50)]
        assert len(lines_of(dedicated)) == 50

    def test_a_listener_that_is_down_holds_up_neither_the_file_nor_rsyslog(self, tmp_path):
        dedicated = tmp_path / "log" / "kamailio.log"
        nobody = free_port()
        generated = generate(tmp_path / "out", "--file", str(dedicated), "--forward", f"tcp://{LOOPBACK}:{nobody}")
        with RsyslogWithDropIn(tmp_path, generated.drop_in, dedicated) as rsyslog:
            send(rsyslog.socket_path, 2000)
            wait_for(lambda: len(lines_of(dedicated)) == 2000, timeout=20,
                     what="the 2000 messages in the file while the listener is down")
            logger(rsyslog.socket_path, "cron", "cron", "still routing")
            wait_for(lambda: any(line.endswith(" still routing") for line in lines_of(rsyslog.general)),
                     timeout=20, what="rsyslog to go on with other programs' messages")
        assert [line.rsplit(" ", 1)[1] for line in lines_of(dedicated)] == [str(n) for n in range(2000)]
        assert any(f"{LOOPBACK}:{nobody}" in line for line in lines_of(rsyslog.general)), "rsyslog says it cannot connect"
