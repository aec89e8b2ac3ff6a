"""The [syslog] source: a listener rsyslog forwards Kamailio's messages to (see `kamlog rsyslog
--forward`). UDP: one message per datagram. TCP: RFC 6587 framing, octet-counted (`123 <PRI>...`)
or newline-terminated (rsyslog's default), told apart per message.

A message is parsed by the grammar named in the config, or the one detected from the first
message (RFC 5424 `<PRI>1 ...` from RSYSLOG_SyslogProtocol23Format is the usual one). Nothing
can be read again from a socket, so no registry applies: what the network loses before kamlog
sees it is lost (prefer TCP); once received, a record is stored like any other."""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from hashlib import blake2b
from queue import Queue
from typing import Any

from ..errors import KamlogError, SourceError
from ..events import LogEvent
from ..parsing.logline import LineParser, ParseStats
from ..store.documents import Identities
from .collector import EventBatch
from .config import SyslogSource
from .handoff import hand_over

log = logging.getLogger("kamlog.collect")
MAX_MESSAGE = 65_535
MAX_CONNECTIONS = 64
MAX_FRAME = 1 << 20  # a TCP frame longer than this is cut and counted, not buffered without end


class SyslogTail:
    """Receives syslog messages in a thread and puts EventBatches into the collector's queue.
    Each run names its messages apart (`syslog://HOST:PORT` plus the run's start): a message
    number is unique within a run only."""

    def __init__(self, source: SyslogSource, out: Queue[Any], identities: Identities, run: str) -> None:
        self.source = source
        self.out = out
        self.error: str | None = None
        self.received = 0
        self.cut = 0  # TCP frames longer than MAX_FRAME
        self.stats = ParseStats()
        self.path = f"syslog+{source.transport}://{source.host}:{source.port}"
        identities.set(self.path, blake2b(f"{self.path}@{run}".encode(), digest_size=16).digest())
        family = socket.AF_INET6 if ":" in source.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if source.transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(family, kind)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if kind == socket.SOCK_DGRAM:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sock.bind((source.host, source.port))
            if kind == socket.SOCK_STREAM:
                self.sock.listen(MAX_CONNECTIONS)
        except OSError as exc:
            self.sock.close()
            raise SourceError(f"cannot listen for syslog on {source.transport} {source.host}:{source.port}: "
                              f"{exc.strerror}") from None
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.parser: LineParser | None = None
        self._stop = threading.Event()
        self._buffers: dict[socket.socket, bytearray] = {}
        self.thread = threading.Thread(target=self._run, name="kamlog-syslog", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                messages: list[bytes] = []
                for key, _ in selector.select(0.25):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self.sock and self.source.transport == "udp":
                        messages.extend(self._datagrams())
                    elif sock is self.sock:
                        self._accept(selector)
                    else:
                        messages.extend(self._stream(sock, selector))
                if messages:
                    self._put(self._parse(messages))
        except KamlogError as exc:
            self.error = str(exc)
            log.error("%s; the syslog listener stopped", exc)
        finally:
            for sock in list(self._buffers):
                sock.close()
            selector.close()
            self.sock.close()
            self._put(None)

    def _datagrams(self) -> list[bytes]:
        out = []
        for _ in range(10_000):
            try:
                out.append(self.sock.recv(MAX_MESSAGE))
            except BlockingIOError:
                break
            except OSError:
                continue
        return out

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        if len(self._buffers) >= MAX_CONNECTIONS:
            conn.close()
            return
        conn.setblocking(False)
        self._buffers[conn] = bytearray()
        selector.register(conn, selectors.EVENT_READ)

    def _stream(self, conn: socket.socket, selector: selectors.BaseSelector) -> list[bytes]:
        buffer = self._buffers[conn]
        try:
            data = conn.recv(1 << 16)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if data:
            buffer += data
        messages = list(frames(buffer))
        if len(buffer) > MAX_FRAME:  # one frame without end in sight: take what there is
            messages.append(bytes(buffer[:MAX_FRAME]))
            del buffer[:MAX_FRAME]
            self.cut += 1
        if not data:  # the sender closed: what is left is its last message
            if buffer.strip():
                messages.append(bytes(buffer))
            selector.unregister(conn)
            conn.close()
            del self._buffers[conn]
        return messages

    def _parse(self, messages: list[bytes]) -> list[LogEvent]:
        if self.parser is None:
            options = self.source.options
            grammar = options.grammar_for(self.path, b"\n".join(m.rstrip(b"\n") for m in messages[:20]) + b"\n")
            self.parser = options.parser(grammar, self.path)
            self.parser.stats = self.stats
            log.info("%s: reading it as %s", self.path, grammar.name)
        events: list[LogEvent] = []
        parser = self.parser
        for message in messages:
            self.received += 1
            # One message, one record: a newline inside it (a multi-line log) is kept in the text.
            text = message.rstrip(b"\r\n").replace(b"\n", b"\\n").decode("utf-8", "replace")
            event = parser.parse_line(text, self.received)
            if event is not None:
                events.append(event)
        return events

    def _put(self, events: list[LogEvent] | None) -> None:
        if events is None:
            hand_over(self.out, None, self._stop)
        elif events and not hand_over(self.out, EventBatch(events), self._stop):
            log.warning("stopping with %d syslog records not stored", len(events))


def frames(buffer: bytearray) -> list[bytes]:
    """Whole messages at the start of a TCP stream's buffer (taken out of it), RFC 6587:
    octet-counted when a frame starts with digits and a space, else up to a newline."""
    out: list[bytes] = []
    while buffer:
        space = buffer.find(b" ", 0, 11)
        if space > 0 and buffer[:space].isdigit():
            size = int(buffer[:space])
            if len(buffer) < space + 1 + size:
                break
            out.append(bytes(buffer[space + 1 : space + 1 + size]))
            del buffer[: space + 1 + size]
            continue
        end = buffer.find(b"\n")
        if end < 0:
            break
        if end:
            out.append(bytes(buffer[:end]))
        del buffer[: end + 1]
    return out
