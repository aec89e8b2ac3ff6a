"""A HEP listener: a UDP socket that Kamailio's siptrace module (or any HEP agent) sends to.

Each datagram is decoded by :func:`kamlog.capture.hep.decode_hep`; a datagram that is not HEP or
whose lengths lie is counted and dropped, never raised, so one bad sender cannot stop the stream.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Self

from kamlog.capture.hep import HepError, HepLog, decode_hep
from kamlog.capture.packets import Payload
from kamlog.errors import SourceError

MAX_DATAGRAM = 65_535


@dataclass(slots=True)
class HepListenerCounters:
    """What arrived: datagrams, the SIP packets and log records decoded, and the rest."""

    datagrams: int = 0
    sip: int = 0
    logs: int = 0
    other_types: int = 0  # valid HEP of a type kamlog does not read
    bad: int = 0  # not HEP, or a HEP packet whose structure lies

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class HepListener:
    """Receive HEP over UDP on ``host:port`` (port 0: any free port; :attr:`port` says which).

    ``receive(timeout)`` returns what arrived within ``timeout`` seconds (at least one datagram
    is waited for, then whatever is already queued is read without waiting); iterating yields
    records until :meth:`close`. Records name ``hep://HOST:PORT`` as their file and the running
    datagram number as their frame. The last error of a bad datagram is kept in
    :attr:`last_error` for the summary.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", *, rcvbuf: int = 4 << 20,
                 batch: int = 10_000) -> None:
        self.batch = batch  # at most this many datagrams per receive(), so a flood cannot trap it
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise SourceError(f"cannot listen for HEP on udp {host}:{port}: {exc.strerror}") from None
        self._sock.setblocking(False)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.file = f"hep://{host}:{self.port}"
        self.counters = HepListenerCounters()
        self.last_error = ""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._closed = False

    def receive(self, timeout: float) -> list[Payload | HepLog]:
        """The records of the datagrams that arrive within ``timeout`` seconds (maybe none)."""
        if self._closed:
            return []
        out: list[Payload | HepLog] = []
        if not self._selector.select(timeout):
            return out
        sock = self._sock
        for _ in range(self.batch):
            try:
                data = sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return out
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                self.counters.bad += 1
                self.last_error = str(exc)
                continue
            record = self._decode(data)
            if record is not None:
                out.append(record)
        return out

    def _decode(self, data: bytes) -> Payload | HepLog | None:
        c = self.counters
        c.datagrams += 1
        try:
            record = decode_hep(data, self.file, c.datagrams, fallback_ts_ns=time.time_ns())
        except HepError as exc:
            c.bad += 1
            self.last_error = str(exc)
            return None
        if record is None:
            c.other_types += 1
        elif isinstance(record, HepLog):
            c.logs += 1
        else:
            c.sip += 1
        return record

    def __iter__(self) -> Iterator[Payload | HepLog]:
        """Records as they arrive, until :meth:`close` (polled twice a second)."""
        while not self._closed:
            yield from self.receive(0.5)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._selector.close()
            self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
