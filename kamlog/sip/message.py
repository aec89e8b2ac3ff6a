"""Bytes of one transport payload -> `SipMessage`.

What correlation and `kamlog calls` need is parsed at once and as cheaply as CPython allows
(start line, Call-ID, CSeq, From and To tags, top Via branch): a handful of C-level searches
over the header section, no Python loop over its lines. Everything else is parsed the first
time it is read and then kept (`headers`, `vias`, `sdp`, ...)."""

from __future__ import annotations

import re
import time
from typing import Final

from ..capture.packets import Payload
from ..events import Origin
from .fields import NameAddr, SipDump, Uri, Via, parse_name_addr, parse_sipdump, parse_uri, parse_via
from .headers import Headers
from .sdp import Sdp, find_sdp, parse_sdp

# Headers whose value is the Call-ID of another leg of the same call (B2BUAs, SBCs, Kamailio's
# topos and dialog modules in common configurations).
LINK_HEADERS: Final[tuple[str, ...]] = ("X-CID", "X-Call-ID", "X-Orig-Call-ID")


def _header_regex(full: str, compact: str | None) -> re.Pattern[bytes]:
    """`\\n<name>:` and the blanks after it, the name matched case-insensitively with character
    classes: sre then keeps `\\n` as a literal prefix (twice as fast as re.IGNORECASE here). The
    value is then taken with bytes.find, in C, rather than matched character by character."""

    def anycase(word: str) -> bytes:
        return b"".join(f"[{c.upper()}{c.lower()}]".encode() if c.isalpha() else re.escape(c).encode() for c in word)

    names = anycase(full) + (b"|" + anycase(compact) if compact else b"")
    return re.compile(b"\\n(?:" + names + b")[ \\t]*:[ \\t]*")


_CALL_ID: Final = _header_regex("call-id", "i")
_LINK_HEADER: Final = re.compile(rb"\n(?:" + b"|".join(re.escape(h.encode()) for h in LINK_HEADERS) + rb")[ \t]*:", re.I)
_CSEQ: Final = _header_regex("cseq", None)
_FROM: Final = _header_regex("from", "f")
_TO: Final = _header_regex("to", "t")
_VIA: Final = _header_regex("via", "v")
_CONTINUATION: Final = re.compile(rb"(?:\r?\n[ \t][^\r\n]*)+")
_FOLD: Final = re.compile(rb"[ \t]*\r?\n[ \t]+")
_TAG: Final = re.compile(rb";[ \t]*tag[ \t]*=[ \t]*([^;,> \t]*)", re.I)
_BRANCH: Final = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^;, \t]*)", re.I)
_TOKEN: Final = re.compile(rb"[A-Za-z0-9.!%*_+`'~-]+")
_SIP20: Final = (b"SIP/2.0\r", b"SIP/2.0")
_VERSION: Final = re.compile(rb"SIP/[0-9]+\.[0-9]+")


class SipMessage:
    """One SIP request or response, as carried by one `Payload`.

    Attributes set when parsed: `raw` (the payload's bytes), `payload`, `version` ("2.0"),
    `method` and `request_uri` (requests), `status_code` and `reason` (responses), `call_id`,
    `cseq_num`, `cseq_method`, `from_tag`, `to_tag`, `branch` (the top Via's). Each is None when
    the message lacks it. The rest are properties parsed on first use. Treat it as immutable."""

    __slots__ = (
        "raw", "payload", "version", "method", "request_uri", "status_code", "reason",
        "call_id", "_cseq_num", "_cseq_method", "_from_tag", "_to_tag", "_branch",
        "_problems", "_head_at", "_head_end", "_body_at",
        "_headers", "_error", "_vias", "_sdp", "_from", "_to", "_contacts", "_uri", "_body",
    )  # fmt: skip

    raw: bytes
    payload: Payload
    version: str | None
    method: str | None
    request_uri: str | None
    status_code: int | None
    reason: str | None
    call_id: str | None
    _cseq_num: int | None
    _cseq_method: str | None
    _from_tag: str | None
    _to_tag: str | None
    _branch: str | None
    _problems: list[str] | None
    _head_at: int
    _head_end: int
    _body_at: int | None
    _headers: Headers
    _error: str | None
    _uri: Uri | None
    _from: NameAddr | None
    _to: NameAddr | None
    _vias: list[Via]
    _contacts: list[NameAddr]
    _body: bytes
    _sdp: Sdp | None

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # The dialog fields: parsed together the first time one of them is read, so that reading
    # only the start line and Call-ID (what finding a call needs) costs two searches.

    @property
    def cseq_num(self) -> int | None:
        try:
            return self._cseq_num
        except AttributeError:
            self._dialog_fields()
            return self._cseq_num

    @property
    def cseq_method(self) -> str | None:
        try:
            return self._cseq_method
        except AttributeError:
            self._dialog_fields()
            return self._cseq_method

    @property
    def from_tag(self) -> str | None:
        try:
            return self._from_tag
        except AttributeError:
            self._dialog_fields()
            return self._from_tag

    @property
    def to_tag(self) -> str | None:
        try:
            return self._to_tag
        except AttributeError:
            self._dialog_fields()
            return self._to_tag

    @property
    def branch(self) -> str | None:
        """The top Via's branch parameter."""
        try:
            return self._branch
        except AttributeError:
            self._dialog_fields()
            return self._branch

    def _dialog_fields(self) -> None:
        data, start, end = self.raw, self._head_at, self._head_end
        value = _value(_CSEQ, data, start, end)
        self._cseq_num = self._cseq_method = None
        if value is None:
            self._problem("no CSeq header")
        else:
            cseq = value.split()
            if len(cseq) == 2 and cseq[0].isdigit() and len(cseq[0]) <= 10:
                self._cseq_num = int(cseq[0])
                self._cseq_method = _text(cseq[1])
            else:
                self._problem(f"CSeq {_text(value)!r} is not a number and a method")
        self._from_tag = _tag(_value(_FROM, data, start, end))
        self._to_tag = _tag(_value(_TO, data, start, end))
        self._branch = _branch(_value(_VIA, data, start, end))

    def _problem(self, text: str) -> None:
        if self._problems is None:
            self._problems = []
        self._problems.append(text)

    @property
    def ts_ns(self) -> int:
        """Capture time, nanoseconds since the epoch (UTC)."""
        return self.payload.ts_ns

    @property
    def timestamp(self) -> str:
        """Capture time in RFC 3339, UTC with `Z`, with the capture's own fraction digits."""
        return rfc3339(self.payload.ts_ns, self.payload.digits)

    @property
    def origin(self) -> Origin:
        """The capture file and frame number that completed this message."""
        return Origin(self.payload.file, frame=self.payload.frame)

    @property
    def headers(self) -> Headers:
        """Every header, in order (parsed on first use)."""
        try:
            return self._headers
        except AttributeError:
            self._headers = Headers(self.raw[self._head_at + 1 : self._head_end], self._head_at + 1)
            return self._headers

    @property
    def basic_error(self) -> str | None:
        """What is wrong with the parts every message has parsed (start line, Call-ID, CSeq),
        without parsing the other headers as `error` does: cheap enough for every message."""
        self.cseq_num  # noqa: B018 - its problems are found with the dialog fields
        return "; ".join(self._problems) if self._problems else None

    @property
    def error(self) -> str | None:
        """What is wrong with the message, or None: a bad start line, a missing Call-ID or
        CSeq, a header line without colon, bytes that are not UTF-8, a body shorter than its
        Content-Length (a capture's snaplen cut it), ... Several are joined with "; "."""
        try:
            return self._error
        except AttributeError:
            self.cseq_num  # noqa: B018 - its problems are found with the dialog fields
            problems = list(self._problems or ())
            problems.extend(self.headers.problems)
            length_text = self.headers.get("Content-Length")
            if length_text is not None:
                if not length_text.isdigit() or len(length_text) > 12:
                    problems.append(f"Content-Length {length_text!r} is not a number")
                elif self._body_at is not None and int(length_text) > len(self.raw) - self._body_at:
                    problems.append(
                        f"body is {len(self.raw) - self._body_at} bytes, shorter than its Content-Length {int(length_text)} (truncated)"
                    )
            self._error = "; ".join(problems) if problems else None
            return self._error

    @property
    def uri(self) -> Uri | None:
        """The request URI, parsed; None for a response."""
        try:
            return self._uri
        except AttributeError:
            self._uri = None if self.request_uri is None else parse_uri(self.request_uri)
            return self._uri

    @property
    def from_(self) -> NameAddr | None:
        """The From header, parsed (`from` is a keyword)."""
        try:
            return self._from
        except AttributeError:
            value = self.headers.get("From")
            self._from = None if value is None else parse_name_addr(value)
            return self._from

    @property
    def to(self) -> NameAddr | None:
        try:
            return self._to
        except AttributeError:
            value = self.headers.get("To")
            self._to = None if value is None else parse_name_addr(value)
            return self._to

    @property
    def from_uri(self) -> str | None:
        """The From URI as written (without display name, brackets or parameters)."""
        from_ = self.from_
        return None if from_ is None else from_.uri.original

    @property
    def to_uri(self) -> str | None:
        to = self.to
        return None if to is None else to.uri.original

    @property
    def unregisters(self) -> bool:
        """A REGISTER that removes bindings: every Contact (or `*`) expires 0, by its own
        `expires` parameter or else the Expires header."""
        if self.method != "REGISTER":
            return False
        contacts = self.contacts
        default = (self.headers.get("Expires") or "").strip()
        if not contacts:
            return False
        return all((contact.params.get("expires") or default) == "0" for contact in contacts)

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first: across Via header lines and comma-separated values."""
        try:
            return self._vias
        except AttributeError:
            self._vias = [parse_via(value) for value in self.headers.get_list("Via")]
            return self._vias

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact value in order (a `*` Contact is a NameAddr whose URI has no scheme)."""
        try:
            return self._contacts
        except AttributeError:
            self._contacts = [parse_name_addr(value) for value in self.headers.get_list("Contact")]
            return self._contacts

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("User-Agent")

    @property
    def server(self) -> str | None:
        return self.headers.get("Server")

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written, parameters included."""
        return self.headers.get("Content-Type")

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() and len(value) <= 12 else None

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return int(value) if value is not None and value.isdigit() and len(value) <= 12 else None

    @property
    def body(self) -> bytes:
        """The body: Content-Length bytes after the empty line (all of them when absent)."""
        try:
            return self._body
        except AttributeError:
            if self._body_at is None:
                self._body = b""
            else:
                length = self.content_length
                end = len(self.raw) if length is None else self._body_at + length
                self._body = self.raw[self._body_at : end]
            return self._body

    @property
    def sdp(self) -> Sdp | None:
        """The SDP of the body (application/sdp, or such a part of a multipart body), parsed."""
        try:
            return self._sdp
        except AttributeError:
            body = find_sdp(self.content_type, self.body) if self.body else None
            self._sdp = None if body is None else parse_sdp(body)
            return self._sdp

    @property
    def sipdump(self) -> SipDump | None:
        """Kamailio sipdump's `P-KSR-SIPDump` header: transport, pid and process number."""
        value = self.headers.get("P-KSR-SIPDump")
        return None if value is None else parse_sipdump(value)

    @property
    def link_call_ids(self) -> list[str]:
        """The Call-IDs of other legs that the LINK_HEADERS name (X-CID, X-Call-ID, ...)."""
        if _LINK_HEADER.search(self.raw, self._head_at, self._head_end) is None:
            return []  # the usual case, known without parsing every header
        return self.call_ids_in(LINK_HEADERS)

    def call_ids_in(self, names: tuple[str, ...]) -> list[str]:
        """The Call-IDs of other legs named by the headers `names` (case-insensitive), in order,
        without repeats nor this message's own Call-ID: the configurable form of link_call_ids."""
        found: list[str] = []
        headers = self.headers
        for name in names:
            for value in headers.get_all(name):
                if value and value != self.call_id and value not in found:
                    found.append(value)
        return found

    def __repr__(self) -> str:
        what = f"{self.method} {self.request_uri}" if self.method else f"{self.status_code} {self.reason}"
        return f"<SipMessage {what} call_id={self.call_id!r} cseq={self.cseq_num} {self.cseq_method} frame={self.payload.frame}>"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _value(pattern: re.Pattern[bytes], data: bytes, start: int, end: int) -> bytes | None:
    """The first value of the header `pattern` finds between start and end, continuation lines
    unfolded; None when there is no such header."""
    match = pattern.search(data, start, end)
    if match is None:
        return None
    at = match.end()
    stop = data.find(b"\n", at, end)
    if stop < 0:
        return data[at:end].strip()
    if stop + 1 < end and data[stop + 1] in (32, 9):
        more = _CONTINUATION.match(data, stop - (data[stop - 1] == 13), end)
        if more is not None:
            return _FOLD.sub(b" ", data[at : more.end()]).strip()
    return data[at:stop].strip()


def _tag(value: bytes | None) -> str | None:
    """The `tag` parameter of a From/To value: after the URI's `>` when there is one."""
    if value is None:
        return None
    start = value.rfind(b">") + 1
    at = value.find(b";tag=", start)
    if at >= 0:
        tag = value[at + 5 :]
        end = tag.find(b";")
        return _text((tag if end < 0 else tag[:end]).strip()) or None
    match = _TAG.search(value, start)
    return _text(match[1]) or None if match else None


def _branch(value: bytes | None) -> str | None:
    """The `branch` parameter of a Via header's first value."""
    if value is None:
        return None
    end = value.find(b",")
    if end < 0:
        end = len(value)
    at = value.find(b";branch=", 0, end)
    if at >= 0:
        branch = value[at + 8 : end]
        stop = branch.find(b";")
        return _text((branch if stop < 0 else branch[:stop]).strip()) or None
    match = _BRANCH.search(value, 0, end)
    return _text(match[1]) or None if match else None


_new = object.__new__


_METHODS: Final = {m.encode(): m for m in (
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
    "INFO", "REFER", "MESSAGE", "UPDATE")}  # fmt: skip
_CODES: Final = {str(code).encode(): code for code in range(100, 700)}


def parse_sip(payload: Payload) -> SipMessage | None:
    """The SIP message a payload carries; None when the payload is not SIP at all (its first
    line, after any CRLFs, is neither a request line nor a status line). A malformed or
    truncated message is returned with `error` saying what is wrong.

    The message as nearly every agent writes it (a known method or `SIP/2.0 NNN`, CRLF line
    ends, `Call-ID: ` spelled so, an empty line after the headers) is taken with a few finds
    and dict lookups; anything else goes through `_parse_any`, which gives the same result."""
    data = payload.data
    sp = data.find(b" ", 0, 20)
    line_end = data.find(b"\n", sp)
    method = _METHODS.get(data[:sp])
    if method is not None:
        if data[line_end - 9 : line_end] != b" SIP/2.0\r":
            return _parse_any(payload)
        uri = data[sp + 1 : line_end - 9]
        if b" " in uri or not uri:
            return _parse_any(payload)
        status = reason = None
        request_uri: str | None = uri.decode("utf-8", "replace")
    elif data[:sp] == b"SIP/2.0":
        status = _CODES.get(data[sp + 1 : sp + 4])
        if status is None or line_end < sp + 5 or data[sp + 4] not in (32, 13) or data[line_end - 1] != 13:
            return _parse_any(payload)
        reason = data[sp + 5 : line_end - 1].decode("utf-8", "replace").strip()
        request_uri = None
    else:
        return _parse_any(payload)
    head_end = data.find(b"\r\n\r\n", line_end - 1)
    at = data.find(b"\nCall-ID: ", line_end, head_end)
    if head_end < 0 or at < 0:
        return _parse_any(payload)
    at += 10
    stop = data.find(b"\n", at, head_end + 2)
    if stop <= at or data[stop - 1] != 13 or data[stop + 1] in (32, 9):
        return _parse_any(payload)
    call_id = data[at : stop - 1].strip()
    if not call_id:
        return _parse_any(payload)
    msg: SipMessage = _new(SipMessage)
    msg.raw = data
    msg.payload = payload
    msg.version = "2.0"
    msg.method = method
    msg.request_uri = request_uri
    msg.status_code = status
    msg.reason = reason
    msg.call_id = call_id.decode("utf-8", "replace")
    msg._head_at = line_end
    msg._head_end = head_end
    msg._body_at = head_end + 4
    msg._problems = None
    return msg


def _parse_any(payload: Payload) -> SipMessage | None:
    """`parse_sip` for any message: leading CRLFs, other methods and versions, LF line ends,
    compact or other spellings of Call-ID, folded values, missing parts (kept with `error`)."""
    data = payload.data
    start = 0
    if data[:1] in (b"\r", b"\n") and data:
        start = len(data) - len(data.lstrip(b"\r\n"))
    line_end = data.find(b"\n", start)
    if line_end < 0:
        line_end = len(data)
    words = data[start:line_end].split(None, 2)
    problems: list[str] | None = None
    method = request_uri = reason = version = None
    status_code = None
    if words and words[0][:4] == b"SIP/":
        if words[0] != b"SIP/2.0" and not _VERSION.fullmatch(words[0]):
            return None
        version = _text(words[0][4:])
        code = words[1] if len(words) > 1 else b""
        reason = _text(words[2].strip()) if len(words) > 2 else ""
        if len(code) == 3 and code.isdigit() and code[0] != 48:
            status_code = int(code)
        else:
            problems = [f"status code {_text(code)!r} is not 3 digits" if code else "status line has no status code"]
    elif (
        len(words) == 3
        and (words[2] in _SIP20 or words[2][:4] == b"SIP/" and _VERSION.fullmatch(words[2].rstrip()))
        and (words[0].isalpha() or _TOKEN.fullmatch(words[0]))
    ):
        method = words[0].decode("ascii")
        request_uri = _text(words[1])
        version = _text(words[2].rstrip()[4:])
    else:
        return None
    head_end = data.find(b"\r\n\r\n", line_end - 1)
    body_at: int | None = head_end + 4
    if head_end < 0:
        head_end = data.find(b"\n\n", line_end)
        body_at = head_end + 2
        if head_end < 0:
            head_end = len(data)
            body_at = None
            if line_end + 1 < len(data):
                problems = (problems or []) + ["no empty line after the headers (truncated?)"]
    msg: SipMessage = _new(SipMessage)
    msg.raw = data
    msg.payload = payload
    msg.version = version
    msg.method = method
    msg.request_uri = request_uri
    msg.status_code = status_code
    msg.reason = reason
    msg._head_at = line_end
    msg._head_end = head_end
    msg._body_at = body_at
    # The Call-ID as nearly every agent writes it, found with one bytes.find; any other
    # spelling, a folded value or a missing header goes the general way.
    at = data.find(b"\nCall-ID: ", line_end, head_end)
    value = None
    if at >= 0:
        at += 10
        stop = data.find(b"\n", at, head_end + 2)
        if stop > at and data[stop - 1] == 13 and data[stop + 1 : stop + 2] not in (b" ", b"\t"):
            value = data[at : stop - 1].strip()
    if not value:
        value = _value(_CALL_ID, data, line_end, head_end)
    if value:
        msg.call_id = value.decode("utf-8", "replace")
    else:
        msg.call_id = None
        problems = (problems or []) + ["no Call-ID header" if value is None else "empty Call-ID header"]
    msg._problems = problems
    return msg


_last_second: list[object] = [None, ""]


def rfc3339(ts_ns: int, digits: int) -> str:
    """`2026-11-28T10:15:13.860537Z`: UTC, `digits` fraction digits (6 for µs captures, 9 for ns)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    if _last_second[0] != seconds:
        _last_second[0], _last_second[1] = seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    base = _last_second[1]
    if digits <= 0:
        return f"{base}Z"
    digits = min(digits, 9)
    return f"{base}.{nanos // 10 ** (9 - digits):0{digits}d}Z"
