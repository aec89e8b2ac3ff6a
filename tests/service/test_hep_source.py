"""The [hep] source: a real Kamailio's siptrace mirrors its SIP traffic over HEP to `kamlog
collect`, with hlog() records; its stderr log is a [[logs]] source of the same service. Each
call is stored once, with its messages, its HEP log records and its log lines."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from tests.capture.test_hep_kamailio import TEMPLATE, options
from tests.cli_helpers import kamlog
from tests.corpus.runners import LOOPBACK, Kamailio, free_port, wait_for
from tests.service.live import Collect, write_config

pytestmark = pytest.mark.realworld


def call_documents(store: Path, call_id: str) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [row[0] for row in db.execute("SELECT doc FROM events WHERE call = ? ORDER BY ts", (call_id,))]
    finally:
        db.close()


class TestHepSource:
    def test_calls_traced_over_hep_are_stored_with_their_log_lines(self, tmp_path: Path) -> None:
        hep_port = free_port()
        template = tmp_path / "kamailio-hep.cfg"
        template.write_text(TEMPLATE.read_text().replace("@@HEP_PORT@@", str(hep_port)).replace("@@HEP_VERSION@@", "3"))
        kamailio = Kamailio(tmp_path, debug=2, config_template=template)
        store = tmp_path / "timeline.db"
        config = tmp_path / "kamlog.toml"
        status = write_config(config, tmp_path / "state", logs=[str(kamailio.stderr_path)], store=store,
                              call_timeout=1, extra=f'[hep]\nlisten = "{LOOPBACK}:{hep_port}"\n')
        call_ids = [f"collect-hep-{n}@kamlog.test" for n in range(3)]
        with Collect(tmp_path, config, status) as collect:
            with kamailio:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((LOOPBACK, 0))
                    udp.settimeout(10)
                    for call_id in call_ids:
                        udp.sendto(options(call_id, udp.getsockname()[1], "UDP", kamailio.sip_port),
                                   (LOOPBACK, kamailio.sip_port))
                        assert udp.recv(65536).startswith(b"SIP/2.0 200")

                def stored() -> bool:
                    return all(len(call_documents(store, c)) >= 4 for c in call_ids)

                wait_for(stored, timeout=60, what="the traced calls to be stored")
        for call_id in call_ids:
            docs = call_documents(store, call_id)
            # OPTIONS in and 200 out (siptrace), the hlog() record, the xlog line of the request.
            assert sum('"sip.method":"OPTIONS"' in d for d in docs) == 1, docs
            assert sum('"sip.code":200' in d for d in docs) == 1, docs
            assert sum("kamlog hlog: OPTIONS" in d for d in docs) == 1, docs
            assert sum(f"request OPTIONS ci={call_id}" in d for d in docs) == 1, docs
            assert all('"host.hostname":"node-a"' in d for d in docs), docs  # the node's name on each
        shown = kamlog("show", "--store", str(store), call_ids[0])
        assert shown.returncode == 0, shown.stderr
        assert "OPTIONS" in shown.stdout and "200 Alive" in shown.stdout
        assert "Traceback" not in collect.output
