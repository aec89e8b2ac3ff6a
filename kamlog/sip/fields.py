"""The structured header values of SIP: URIs, name-addr headers (From, To, Contact), Via and
Kamailio sipdump's `P-KSR-SIPDump`. Lenient: a value that does not fit keeps what could be read."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from .headers import parse_params


class Uri(NamedTuple):
    """A SIP, SIPS or other URI (`tel:`, `urn:`...): user and host are None where absent."""

    original: str
    scheme: str | None
    user: str | None
    host: str | None
    port: int | None
    params: dict[str, str | None]


class NameAddr(NamedTuple):
    """A From, To or Contact value: display name, URI, header parameters (tag, expires, q)."""

    original: str
    display: str | None
    uri: Uri
    params: dict[str, str | None]

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


class Via(NamedTuple):
    """One Via value: `SIP/2.0/UDP host:port;branch=...;received=...;rport=...`."""

    original: str
    protocol: str | None  # "SIP/2.0"
    transport: str | None  # "UDP", "TCP", "TLS", "WS", ...
    host: str | None
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport a server filled in; None when absent or only asked for (a bare `;rport`)."""
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None


class SipDump(NamedTuple):
    """Kamailio sipdump's `P-KSR-SIPDump: <proto> pid=<pid> pno=<process number>` header, which
    its `mode` bit 8 adds to the messages it writes to pcap files (sipdump_write.c)."""

    original: str
    transport: str | None
    pid: int | None
    pno: int | None


# The parsers below are cached by their text: a dialog's messages repeat their From, To,
# Contact and Via values, and a capture holds many dialogs at once. Their results are shared:
# read them, never change them.
@lru_cache(maxsize=4096)
def parse_uri(text: str) -> Uri:
    """`sip:user:password@host:port;params?headers` and its kin; other schemes keep their text."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return Uri(text, None, None, None, None, {})
    scheme = scheme.lower()
    rest = rest.partition("?")[0]
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return Uri(text, scheme, number or None, None, None, parse_params(params))
    if scheme not in ("sip", "sips"):
        return Uri(text, scheme, None, None, None, {})
    user: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        user = rest[:at].partition(":")[0] or None
        rest = rest[at + 1 :]
    hostport, _, params = rest.partition(";")
    host, port = split_hostport(hostport)
    return Uri(text, scheme, user, host, port, parse_params(params))


def split_hostport(text: str) -> tuple[str | None, int | None]:
    """`host:port`, `[v6]:port` or `host` -> (host, port); IPv6 brackets kept off the host."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return text or None, None
        host, after = text[1:end], text[end + 1 :]
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    port_text = port_text.strip()
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None
    return host.strip() or None, port


@lru_cache(maxsize=4096)
def parse_name_addr(text: str) -> NameAddr:
    """`"Display" <uri>;params`, `Display <uri>;params` or `uri;params` (whose `;` parameters
    then belong to the header, RFC 3261 section 20.10)."""
    text = text.strip()
    display: str | None = None
    rest = text
    if rest.startswith('"'):
        i, chars = 1, []
        while i < len(rest):
            char = rest[i]
            if char == "\\" and i + 1 < len(rest):
                chars.append(rest[i + 1])
                i += 2
                continue
            if char == '"':
                break
            chars.append(char)
            i += 1
        display = "".join(chars)
        rest = rest[i + 1 :]
    open_at = rest.find("<")
    if open_at >= 0:
        if display is None:
            display = rest[:open_at].strip() or None
        close_at = rest.find(">", open_at)
        if close_at < 0:
            return NameAddr(text, display, parse_uri(rest[open_at + 1 :]), {})
        uri_text, params = rest[open_at + 1 : close_at], rest[close_at + 1 :]
    else:
        uri_text, _, params = rest.strip().partition(";")
    return NameAddr(text, display, parse_uri(uri_text), parse_params(params.strip().lstrip(";")))


@lru_cache(maxsize=4096)
def parse_via(text: str) -> Via:
    """One Via value (already split at commas)."""
    text = text.strip()
    head, _, params = text.partition(";")
    parts = head.split("/", 2)
    if len(parts) == 3:
        tail = parts[2].strip().split(None, 1)
        protocol: str | None = f"{parts[0].strip()}/{parts[1].strip()}"
        transport: str | None = tail[0].upper() if tail else None
        sent_by = tail[1] if len(tail) > 1 else ""
    else:
        protocol, transport, sent_by = None, None, head
    host, port = split_hostport(sent_by.replace(" ", ""))
    return Via(text, protocol, transport, host, port, parse_params(params))


def parse_sipdump(text: str) -> SipDump:
    """`udp pid=1234 pno=5` -> SipDump("udp pid=1234 pno=5", "udp", 1234, 5)."""
    transport: str | None = None
    values: dict[str, int | None] = {}
    for word in text.split():
        name, equals, value = word.partition("=")
        if not equals:
            if transport is None:
                transport = word.lower()
        else:
            digits = value.lstrip("-")
            values[name.lower()] = int(value) if digits.isdigit() and len(digits) < 20 else None
    return SipDump(text.strip(), transport, values.get("pid"), values.get("pno"))
