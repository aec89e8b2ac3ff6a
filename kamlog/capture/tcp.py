"""TCP stream reassembly and SIP framing: segments in capture order become whole SIP messages.

Each direction of a connection (its 4-tuple) is a stream. Segments are put in sequence order
(32-bit wraparound), retransmissions and overlaps are trimmed, out-of-order segments wait for
their gap to fill within a bound (bytes and capture seconds), after which the gap is reported
lost and the stream looks for the next SIP start line. SIP messages are framed by the blank line
after their headers and Content-Length (RFC 3261 section 18.3); keep-alive CRLFs between messages
are counted and dropped. A connection that opens with a WebSocket upgrade is framed by
websocket.py instead. Everything a stream holds is bounded, so a hostile capture costs a note,
not memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import NamedTuple

from kamlog.capture.packets import Payload
from kamlog.capture.websocket import WebSocketError, WsFramer, looks_like_handshake, upgrade_header_end

FIN, SYN, RST, ACK = 1, 2, 4, 16
_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_WRAP = 0x100000000

# Methods are upper case in practice (RFC 3261 names them so); that lets a search find
# "INVITE sip:..." glued to a body that lacks its final CRLF.
START = re.compile(rb"[A-Z][A-Z0-9._!%*+`'~-]* [^ \r\n]+ SIP/2\.0\r\n|SIP/2\.0 [1-6][0-9][0-9][ \r]")
CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([0-9]{1,12})[ \t]*\r\n",
                            re.IGNORECASE)

_SIP, _WS, _DEAD = 0, 1, 2
_RESYNC_TAIL = 1024  # bytes kept while looking for a start line that may span segments
_MAX_NOTES = 10_000


class TcpNote(NamedTuple):
    """Something a stream could not do cleanly: a lost gap, a message without Content-Length,
    an oversized message, a truncated end. ``stream`` is ``src_ip:port > dst_ip:port``."""

    file: str
    frame: int
    stream: str
    text: str


@dataclass(slots=True)
class TcpCounters:
    """What the reassembler saw, for the capture summary."""

    segments: int = 0  # segments with data, SYN, FIN or RST (pure ACKs are not counted)
    streams: int = 0
    retransmissions: int = 0  # segments wholly or partly seen before (the repeated bytes dropped)
    out_of_order: int = 0
    gaps: int = 0  # holes never filled within the bound
    lost_bytes: int = 0  # bytes of those holes
    skipped_bytes: int = 0  # bytes dropped while looking for a SIP start line (or after an error)
    messages: int = 0  # SIP messages framed out of TCP
    ws_messages: int = 0  # SIP messages out of WebSocket frames
    ws_streams: int = 0
    ws_control: int = 0  # ping, pong, close frames
    keepalives: int = 0  # CRLFCRLF pings and CRLF pongs between messages
    no_content_length: int = 0
    truncated: int = 0  # messages cut short by a gap or the end of the stream, emitted as they are
    errors: int = 0  # oversized messages, bad WebSocket frames
    evicted: int = 0  # streams closed early because too many were open
    notes_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Seg(NamedTuple):
    start: int
    end: int
    arrival: int
    frame: int
    ts_ns: int
    digits: int
    file: str


class _Stream:
    """One direction of one connection."""

    __slots__ = ("key", "label", "isn", "next_seq", "next_off", "buf", "base", "segs", "pending",
                 "pending_bytes", "pending_ts", "synced", "mode", "ws", "fin_off", "last_ts",
                 "framed", "scan", "closed")

    def __init__(self, key: tuple[str, int, str, int], next_seq: int, synced: bool,
                 isn: int | None, ts_ns: int) -> None:
        self.key = key
        self.label = f"{key[0]}:{key[1]} > {key[2]}:{key[3]}"
        self.isn = isn
        self.next_seq = next_seq
        self.next_off = 0
        self.buf = bytearray()
        self.base = 0  # stream offset of buf[0]
        self.segs: list[_Seg] = []  # the segments whose bytes are in buf
        self.pending: dict[int, tuple[bytes, _Seg]] = {}  # stream offset -> waiting segment
        self.pending_bytes = 0
        self.pending_ts = 0
        self.synced = synced
        self.mode = _SIP
        self.ws: WsFramer | None = None
        self.fin_off = -1
        self.last_ts = ts_ns
        self.framed = False  # something (a message or a handshake) was framed already
        self.scan = 0  # bytes of buf already searched for the end of the headers
        self.closed = False


class TcpReassembler:
    """Reassemble TCP segments into SIP messages (transport "tcp") and SIP-over-WebSocket
    messages (transport "ws").

    ``segment()`` takes each TCP segment in capture order and returns the messages it completed;
    ``flush()`` ends every stream at the end of the capture. Problems are counted in
    :attr:`counters` and described in :attr:`notes` (bounded; :meth:`take_notes` drains them).
    """

    def __init__(self, *, max_message: int = 256 * 1024, max_header: int = 64 * 1024,
                 gap_bytes: int = 256 * 1024, gap_seconds: float = 10.0,
                 max_streams: int = 65_536, closed_memory: int = 4096, fast: bool = True) -> None:
        self.fast = fast  # False: every segment through the general path (for tests)
        self.max_message = max_message
        self.max_header = max_header
        self.gap_bytes = gap_bytes
        self.gap_ns = int(gap_seconds * 1e9)
        self.max_streams = max_streams
        self.closed_memory = closed_memory
        self.counters = TcpCounters()
        self.notes: list[TcpNote] = []
        self._streams: dict[tuple[str, int, str, int], _Stream] = {}
        self._closed: dict[tuple[str, int, str, int], int] = {}  # key -> next_seq at close
        self._arrival = 0
        self._frame = 0
        self._file = ""

    # -- public API -------------------------------------------------------------------------

    def segment(self, src_ip: str, src_port: int, dst_ip: str, dst_port: int, seq: int, flags: int,
                data: bytes, ts_ns: int, digits: int, file: str, frame: int) -> list[Payload]:
        """Take one TCP segment; return the messages it completed (often none or one)."""
        if not data and not flags & (SYN | FIN | RST):
            return []
        key = (src_ip, src_port, dst_ip, dst_port)
        self.counters.segments += 1
        self._arrival += 1
        self._frame = frame
        self._file = file
        out: list[Payload] = []
        st = self._streams.get(key)
        # The common case: the next segment of a stream with nothing buffered carries exactly one
        # whole message (start line, headers, Content-Length body): it is the message, as is.
        if (st is not None and seq == st.next_seq and not flags & (SYN | FIN | RST) and not st.buf
                and not st.pending and st.synced and st.mode == _SIP and st.fin_off < 0 and self.fast):
            head = data.find(b"\r\n\r\n")
            if head > 0 and START.match(data) is not None:
                m = CONTENT_LENGTH.search(data, 0, head + 2)
                if m is not None and head + 4 + int(m[1]) == len(data) and int(m[1]) <= self.max_message:
                    size = len(data)
                    st.last_ts = ts_ns
                    st.next_off += size
                    st.next_seq = (seq + size) & _MASK
                    st.base += size
                    st.framed = True
                    self.counters.messages += 1
                    return [Payload(data, ts_ns, digits, src_ip, src_port, dst_ip, dst_port, "tcp", file, frame)]
        if flags & SYN:
            if st is not None and st.isn == seq:
                self.counters.retransmissions += 1
                return out
            if st is not None:
                out += self._close(st)
            st = self._open(key, (seq + 1) & _MASK, True, seq, ts_ns, out)
            seq = (seq + 1) & _MASK
        elif st is None:
            if not data:
                return out
            closed_at = self._closed.get(key)
            if closed_at is not None and ((closed_at - seq - len(data)) & _MASK) < _HALF:
                self.counters.retransmissions += 1  # the last bytes of a stream already closed
                return out
            synced = START.match(data) is not None or looks_like_handshake(data, 0)
            st = self._open(key, seq, synced, None, ts_ns, out)
        st.last_ts = ts_ns
        if data:
            out += self._data(st, seq, data, ts_ns, digits, file, frame)
        if flags & RST:
            out += self._close(st)
        elif flags & FIN:
            d = (seq - st.next_seq) & _MASK
            st.fin_off = st.next_off + (d - _WRAP if d >= _HALF else d) + len(data)
            if st.fin_off <= st.next_off:
                out += self._close(st)
        return out

    def flush(self) -> list[Payload]:
        """End every open stream (the capture is over): emit what can be emitted, report the rest."""
        out: list[Payload] = []
        for st in list(self._streams.values()):
            out += self._close(st)
        return out

    def summary(self, examples: int = 10) -> list[str]:
        """Sentences for the user about what the streams lost or could not frame (empty when
        nothing), with the first `examples` notes."""
        c = self.counters
        out = []
        if c.gaps:
            out.append(f"TCP: {c.gaps} gaps never filled ({c.lost_bytes} bytes lost by the capture)")
        if c.truncated:
            out.append(f"TCP: {c.truncated} SIP messages cut short by a gap or the end of the capture; kept as they are")
        if c.errors or c.skipped_bytes:
            out.append(f"TCP: {c.errors} framing errors, {c.skipped_bytes} bytes skipped to find the next SIP message")
        return out + [f"{n.file} frame {n.frame} ({n.stream}): {n.text}" for n in self.take_notes()[:examples]]

    def take_notes(self) -> list[TcpNote]:
        """The notes gathered since the last call, oldest first."""
        notes, self.notes = self.notes, []
        return notes

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # -- streams ----------------------------------------------------------------------------

    def _open(self, key: tuple[str, int, str, int], next_seq: int, synced: bool, isn: int | None,
              ts_ns: int, out: list[Payload]) -> _Stream:
        if len(self._streams) >= self.max_streams:
            oldest = sorted(self._streams.values(), key=lambda s: s.last_ts)
            for victim in oldest[:max(1, self.max_streams // 8)]:
                self.counters.evicted += 1
                out += self._close(victim)
        self._closed.pop(key, None)
        st = _Stream(key, next_seq, synced, isn, ts_ns)
        self._streams[key] = st
        self.counters.streams += 1
        return st

    def _close(self, st: _Stream) -> list[Payload]:
        out: list[Payload] = []
        if st.closed:
            return out
        st.closed = True
        while st.pending:
            out += self._skip_gap(st)
        out += self._frame_buf(st, at_end=True)
        if st.buf:
            self._note(st, f"stream ended with {len(st.buf)} bytes that are not a whole message")
            self.counters.skipped_bytes += len(st.buf)
        if st.ws is not None and st.ws.fragments:
            self._note(st, f"stream ended inside a fragmented WebSocket message "
                           f"({st.ws.fragments_size} bytes dropped)")
        self._streams.pop(st.key, None)
        self._closed[st.key] = st.next_seq
        if len(self._closed) > self.closed_memory:
            del self._closed[next(iter(self._closed))]
        return out

    def _note(self, st: _Stream, text: str) -> None:
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(TcpNote(self._file, self._frame, st.label, text))
        else:
            self.counters.notes_dropped += 1

    # -- sequence space -----------------------------------------------------------------------

    def _data(self, st: _Stream, seq: int, data: bytes, ts_ns: int, digits: int, file: str,
              frame: int) -> list[Payload]:
        c = self.counters
        d = (seq - st.next_seq) & _MASK
        if d >= _HALF:
            d -= _WRAP
        start = st.next_off + d
        if d < 0:
            if start + len(data) <= st.next_off:
                c.retransmissions += 1
                return []
            c.retransmissions += 1
            data = data[-d:]
            start = st.next_off
        elif d > 0:
            seg = _Seg(start, start + len(data), self._arrival, frame, ts_ns, digits, file)
            old = st.pending.get(start)
            if old is not None:
                c.retransmissions += 1
                if len(old[0]) >= len(data):
                    return []
                st.pending_bytes -= len(old[0])
            else:
                c.out_of_order += 1
            if not st.pending:
                st.pending_ts = ts_ns
            st.pending[start] = (data, seg)
            st.pending_bytes += len(data)
            if (d > self.gap_bytes or st.pending_bytes > self.gap_bytes
                    or ts_ns - st.pending_ts > self.gap_ns):
                return self._skip_gap(st)
            return []
        self._append(st, data, _Seg(start, start + len(data), self._arrival, frame, ts_ns, digits,
                                    file))
        out: list[Payload] = []
        if st.pending:
            self._drain(st)
            if st.pending and ts_ns - st.pending_ts > self.gap_ns:
                out += self._skip_gap(st)
        out += self._frame_buf(st, at_end=False)
        if 0 <= st.fin_off <= st.next_off:
            out += self._close(st)
        return out

    def _append(self, st: _Stream, data: bytes, seg: _Seg) -> None:
        if seg.start != st.next_off:
            seg = seg._replace(start=st.next_off)
        st.buf += data
        st.segs.append(seg)
        st.next_off += len(data)
        st.next_seq = (st.next_seq + len(data)) & _MASK

    def _drain(self, st: _Stream) -> None:
        """Move the waiting segments that now follow the stream's end into its buffer."""
        pending = st.pending
        while pending:
            k = min(pending)
            if k > st.next_off:
                break
            data, seg = pending.pop(k)
            st.pending_bytes -= len(data)
            if k + len(data) <= st.next_off:
                self.counters.retransmissions += 1
                continue
            self._append(st, data[st.next_off - k:], seg)
        if pending:
            st.pending_ts = min(seg.ts_ns for _, seg in pending.values())

    def _skip_gap(self, st: _Stream) -> list[Payload]:
        """Give up on the hole before the first waiting segment: report it, end the message
        that was cut, jump over the hole and look for the next start line."""
        out = self._frame_buf(st, at_end=True)
        k = min(st.pending)
        lost = k - st.next_off
        self.counters.gaps += 1
        self.counters.lost_bytes += lost
        if st.buf:
            self.counters.skipped_bytes += len(st.buf)
        self._note(st, f"{lost} bytes never captured at stream offset {st.next_off}"
                       + (f"; {len(st.buf)} bytes before them dropped" if st.buf else "")
                       + ("; looking for the next SIP start line" if st.mode == _SIP else ""))
        st.buf.clear()
        st.segs.clear()
        st.scan = 0
        st.next_seq = (st.next_seq + lost) & _MASK
        st.next_off = st.base = k
        if st.mode == _WS:
            st.mode = _DEAD
            self._note(st, "a WebSocket stream cannot be framed again after a gap")
        st.synced = False
        self._drain(st)
        out += self._frame_buf(st, at_end=False)
        if 0 <= st.fin_off <= st.next_off:
            out += self._close(st)
        return out

    # -- framing ----------------------------------------------------------------------------

    def _frame_buf(self, st: _Stream, at_end: bool) -> list[Payload]:
        """Frame what the buffer holds; keep the incomplete rest for later (or, ``at_end``,
        emit what is usable of it)."""
        buf = st.buf
        n = len(buf)
        pos = 0
        out: list[Payload] = []
        c = self.counters
        while pos < n:
            if st.mode != _SIP:
                pos = self._frame_ws(st, pos, out) if st.mode == _WS else n
                if st.mode == _DEAD:
                    c.skipped_bytes += n - pos
                    pos = n
                break
            if not st.synced:
                pos = self._resync(st, pos, at_end)
                if not st.synced:
                    break
                continue
            ch = buf[pos]
            if ch == 13 or ch == 10:
                j = pos + 1
                while j < n and (buf[j] == 13 or buf[j] == 10):
                    j += 1
                crlfs = (j - pos) // 2
                c.keepalives += max(1, crlfs // 2 + crlfs % 2)
                pos = j
                continue
            hdr = buf.find(b"\r\n\r\n", pos + st.scan - 3 if st.scan > 3 else pos)
            if hdr < 0:
                st.scan = n - pos
                r = self._head_wait(st, pos, n)
                if r is not None:
                    pos = r
                    continue
                if at_end:
                    self._note(st, f"stream ended inside the headers of a message ({n - pos} bytes)")
                    c.skipped_bytes += n - pos
                    pos = n
                break
            st.scan = 0
            if START.match(buf, pos) is None:
                r = self._not_sip(st, pos)
                if r is None:
                    break
                pos = r
                continue
            body = hdr + 4
            m = CONTENT_LENGTH.search(buf, pos, hdr + 2)
            if m is not None:
                length = int(m[1])
                if length > self.max_message:
                    c.errors += 1
                    self._note(st, f"Content-Length {length} is over the {self.max_message}-byte "
                                   "limit; skipping that message's headers")
                    c.skipped_bytes += body - pos
                    st.synced = False
                    pos = body
                    continue
                end = body + length
                if end > n:
                    if not at_end:
                        break
                    c.truncated += 1
                    self._note(st, f"message cut short: {n - body} of {length} body bytes")
                    end = n
            else:
                end = self._end_without_length(st, buf, body, n, at_end)
                if end < 0:
                    break
            out.append(self._emit(st, st.base + pos, st.base + end, bytes(buf[pos:end]), "tcp"))
            c.messages += 1
            st.framed = True
            pos = end
        if pos == n and st.ws is None:
            buf.clear()
            st.base += pos
            st.segs.clear()
        elif pos:
            del buf[:pos]
            st.base += pos
            keep = st.base
            if st.ws is not None and st.ws.fragments:
                keep = min(keep, st.ws.message_start)
            if st.segs and st.segs[0].end <= keep:
                st.segs = [s for s in st.segs if s.end > keep]
        return out

    def _head_wait(self, st: _Stream, pos: int, n: int) -> int | None:
        """Headers still incomplete: None if waiting is right, else where framing goes on after
        losing synchronisation (the start line is not SIP, or the headers run over the limit)."""
        buf = st.buf
        line_end = buf.find(b"\r\n", pos, pos + 2048)
        if line_end >= 0 and START.match(buf, pos) is None:
            return self._not_sip(st, pos)
        if line_end < 0 and n - pos >= 2048 or n - pos > self.max_header:
            self.counters.errors += 1
            self._note(st, f"no end of SIP headers within {n - pos} bytes; looking for the next "
                           "start line")
            return self._desync(st, pos, n)
        return None

    def _desync(self, st: _Stream, pos: int, n: int) -> int:
        """Lose synchronisation: drop the line at ``pos``; the resync looks from the next one."""
        nl = st.buf.find(b"\n", pos, n)
        nxt = nl + 1 if nl >= 0 else n
        self.counters.skipped_bytes += nxt - pos
        st.synced = False
        st.scan = 0
        return nxt

    def _not_sip(self, st: _Stream, pos: int) -> int | None:
        """Bytes at a message boundary that are no SIP start line: a WebSocket handshake at the
        start of the stream, or lost synchronisation. Returns where to go on (None: wait)."""
        buf = st.buf
        if not st.framed and looks_like_handshake(buf, pos):
            r = upgrade_header_end(buf, pos, self.max_header)
            if r is None:
                return None
            if r > 0:
                st.mode = _WS
                st.ws = WsFramer(self.max_message)
                st.framed = True
                self.counters.ws_streams += 1
                return r
        self._note(st, f"bytes at stream offset {st.base + pos} do not start a SIP message; "
                       "looking for the next start line")
        return self._desync(st, pos, len(buf))

    def _end_without_length(self, st: _Stream, buf: bytearray, body: int, n: int,
                            at_end: bool) -> int:
        """Where a message without Content-Length ends: at the next start line, else at the end
        of the stream; -1 while undecided."""
        if START.match(buf, body) is not None:
            end = body
        else:
            m = START.search(buf, body)
            if m is not None:
                end = m.start()
            elif at_end or n - body > self.max_message:
                end = n
            else:
                return -1
        self.counters.no_content_length += 1
        self._note(st, "SIP message over TCP without Content-Length; its body ends "
                       + ("at the next start line" if end < n or not at_end else "at the stream end"))
        return end

    def _resync(self, st: _Stream, pos: int, at_end: bool) -> int:
        buf = st.buf
        st.scan = 0
        if START.match(buf, pos) is not None:
            st.synced = True
            return pos
        m = START.search(buf, pos)
        if m is not None:
            self.counters.skipped_bytes += m.start() - pos
            st.synced = True
            return m.start()
        n = len(buf)
        if at_end:
            self.counters.skipped_bytes += n - pos
            return n
        nl = buf.rfind(b"\n", pos)
        keep_from = max(nl + 1 if nl >= 0 else pos, n - _RESYNC_TAIL)
        self.counters.skipped_bytes += keep_from - pos
        return keep_from

    def _frame_ws(self, st: _Stream, pos: int, out: list[Payload]) -> int:
        ws = st.ws
        assert ws is not None
        buf = st.buf
        n = len(buf)
        while pos < n:
            control = ws.control
            try:
                nxt, message, start = ws.frame(buf, pos, st.base)
            except WebSocketError as exc:
                self.counters.errors += 1
                self._note(st, f"{exc}; the rest of the stream is skipped")
                st.mode = _DEAD
                return pos
            if nxt == pos:
                break
            self.counters.ws_control += ws.control - control
            if message is not None:
                out.append(self._emit(st, start, st.base + nxt, message, "ws"))
                self.counters.ws_messages += 1
            pos = nxt
        return pos

    def _emit(self, st: _Stream, start: int, end: int, data: bytes, transport: str) -> Payload:
        """The Payload of stream bytes [start, end): time and frame of the segment that arrived
        last among those that carried them, the other frames (of its file) as parts."""
        segs = st.segs
        src_ip, src_port, dst_ip, dst_port = st.key
        if len(segs) == 1 and segs[0].start <= start:
            one = segs[0]
            return Payload(data, one.ts_ns, one.digits, src_ip, src_port, dst_ip, dst_port,
                           transport, one.file, one.frame)
        last: _Seg | None = None
        carried: list[_Seg] = []
        for s in segs:
            if s.start < end and s.end > start:
                carried.append(s)
                if last is None or s.arrival > last.arrival:
                    last = s
        if last is None:
            last = _Seg(start, end, self._arrival, self._frame, st.last_ts, 6, self._file)
        parts = tuple(sorted({s.frame for s in carried if s.file == last.file} - {last.frame}))
        return Payload(data, last.ts_ns, last.digits, src_ip, src_port, dst_ip, dst_port, transport,
                       last.file, last.frame, "", parts)
