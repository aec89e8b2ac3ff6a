"""The [syslog] source: a real rsyslog forwards a real Kamailio's messages (RFC 5424, over UDP
and over TCP) to `kamlog collect`; every message rsyslog forwarded is stored, parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamlog.service.syslog import frames
from tests.corpus.runners import LOOPBACK, Kamailio, MountNamespace, Rsyslog, RsyslogOutput, Sipp, free_port, wait_for
from tests.service.live import Collect, store_count, write_config

TEMPLATE = "RSYSLOG_SyslogProtocol23Format"


class ForwardingRsyslog(Rsyslog):
    """The corpus' private rsyslog, also forwarding Kamailio's messages to kamlog's listener."""

    def __init__(self, workdir: Path, witness: Path, transport: str, port: int) -> None:
        super().__init__(workdir, [RsyslogOutput(witness, TEMPLATE)])
        self.forward = (f'    action(type="omfwd" target="{LOOPBACK}" port="{port}" protocol="{transport}" '
                        f'template="{TEMPLATE}" queue.type="LinkedList" action.resumeRetryCount="-1")\n')

    def render_config(self) -> str:
        text = super().render_config()
        return text.replace("    stop\n", self.forward + "    stop\n")


class TestFraming:
    def test_octet_counted_and_newline_frames_are_told_apart_and_partial_ones_wait(self) -> None:
        buffer = bytearray(b"11 <13>1 hello\n<13>1 world\n5 ab")
        assert frames(buffer) == [b"<13>1 hello", b"<13>1 world"]
        assert buffer == b"5 ab"
        buffer += b"cde"
        assert frames(buffer) == [b"abcde"]
        assert buffer == b""


@pytest.mark.realworld
class TestSyslogListener:
    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    def test_every_message_rsyslog_forwards_is_stored_parsed(self, tmp_path: Path, transport: str) -> None:
        port = free_port()
        store = tmp_path / "timeline.db"
        config = tmp_path / "kamlog.toml"
        status = write_config(config, tmp_path / "state", store=store, call_timeout=1,
                              extra=f'[syslog]\nlisten = "{transport}://{LOOPBACK}:{port}"\n')
        witness = tmp_path / "witness.log"
        with Collect(tmp_path, config, status) as collect:
            with ForwardingRsyslog(tmp_path, witness, transport, port) as rsyslog, \
                    MountNamespace(tmp_path, rsyslog.socket_path) as ns, \
                    Kamailio(tmp_path, log_target="syslog", namespace=ns, debug=3) as kamailio:
                result = Sipp(tmp_path, "options.xml", remote=(LOOPBACK, kamailio.sip_port),
                              call_id="options-syslog@kamlog.test").run()
                assert result.ok, result.output
                kamailio.stop()
                rsyslog.drain()
            sent = len(witness.read_bytes().splitlines())
            assert sent > 100
            wait_for(lambda: store_count(store) == sent, timeout=60, what="every forwarded message to be stored")
            health = collect.health()
            assert health is not None
            assert health["counters"]["unparsed"] == 0
        assert f"reading it as kamailio-syslog-rfc5424" in collect.output
        assert "Traceback" not in collect.output
