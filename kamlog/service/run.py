"""`kamlog collect` as a process: builds a Collector from the configuration, runs it in the main
thread, and maps signals: SIGTERM and SIGINT drain and exit, SIGHUP drains and starts again
with the configuration read anew (a broken new one is reported and the old one kept)."""

from __future__ import annotations

import logging
import os
import signal
import traceback
import sys
from hashlib import blake2b
from typing import Any

from ..errors import KamlogError
from .collector import Collector
from .config import ServiceConfig, load
from .health import StatusServer
from .sinks import open_sinks

log = logging.getLogger("kamlog.collect")


def build(config: ServiceConfig) -> Collector:
    from ..sources.capture_dir import CaptureDirectory
    from ..sources.hep import HepListener

    captures = [CaptureDirectory(c.pattern, config.captures_state_path(n), closed_after=c.closed_after)
                for n, c in enumerate(config.captures)]
    hep = HepListener(config.hep.port, config.hep.host) if config.hep is not None else None
    collector = Collector(config, open_sinks(config), captures, hep)
    if config.journald is not None:
        from .journal import JournalTail

        # Its queue and its events' identities are the collector's own.
        collector.sources.append(JournalTail(config.journald, config.journal_state_path, collector.queue,
                                             collector.documents.identities))
    if config.syslog is not None:
        from .syslog import SyslogTail

        collector.sources.append(SyslogTail(config.syslog, collector.queue, collector.documents.identities,
                                            f"{config.node}@{collector.started}"))
    if hep is not None:
        # Datagrams are numbered from 1 in each run: the run names them apart.
        run = f"{hep.file}@{config.node}@{collector.started}".encode()
        collector.documents.identities.set(hep.file, blake2b(run, digest_size=16).digest())
    return collector


def serve(config: ServiceConfig) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    _log_to_stderr()
    current: list[Collector] = []
    wanted = {"reload": False, "stop": False}

    def on_signal(signum: int, frame: Any) -> None:
        wanted["reload" if signum == signal.SIGHUP else "stop"] = True
        if current:
            current[0].stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    status: StatusServer | None = None
    try:
        while True:
            collector = build(config)
            current[:] = [collector]
            if status is None and config.status is not None:
                status = StatusServer(config.status, lambda: current[0].status())
                status.start()
                log.info("status on http://%s:%d/health", config.status[0], status.port)
            if wanted["stop"]:
                collector.stop()
            try:
                collector.run()
            except KamlogError:
                raise
            except Exception as exc:  # a bug: one line here, the traceback in a file, exit 1
                crash = os.path.join(config.state_dir, "crash.log")
                with open(crash, "a") as f:
                    traceback.print_exc(file=f)
                log.critical("internal error: %s: %s (a bug; the traceback is in %s); what was not "
                             "stored is read again at the next start", type(exc).__name__, exc, crash)
                return 1
            if wanted["stop"] or not wanted["reload"]:
                return 0
            wanted["reload"] = False
            try:
                config = load(config.path)
                log.info("reloaded %s", config.path)
            except Exception as exc:
                log.error("%s; keeping the configuration as it was", exc)
    finally:
        if status is not None:
            status.stop()


def _log_to_stderr() -> None:
    """The service's own log: one line per event, on stderr (systemd puts it in the journal)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kamlog collect: %(levelname)s: %(message)s"))
    root = logging.getLogger("kamlog")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
