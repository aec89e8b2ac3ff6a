"""SDP (RFC 4566) bodies -> `Sdp`: origin, session connection address, and per media stream its
type, port, protocol and codecs; multipart bodies (RFC 2046) searched for their SDP part."""

from __future__ import annotations

from typing import Final, NamedTuple

from .headers import parse_params

# RTP/AVP static payload types (RFC 3551 tables 4 and 5) -> encoding name.
STATIC_PAYLOAD_TYPES: Final[dict[str, str]] = {
    "0": "PCMU", "3": "GSM", "4": "G723", "5": "DVI4", "6": "DVI4", "7": "LPC", "8": "PCMA",
    "9": "G722", "10": "L16", "11": "L16", "12": "QCELP", "13": "CN", "14": "MPA", "15": "G728",
    "16": "DVI4", "17": "DVI4", "18": "G729", "25": "CelB", "26": "JPEG", "28": "nv", "31": "H261",
    "32": "MPV", "33": "MP2T", "34": "H263",
}  # fmt: skip

_MAX_MULTIPART_DEPTH: Final = 4


class SdpOrigin(NamedTuple):
    """The `o=` line: username, session id and version, network and address type, address."""

    username: str
    session_id: str
    version: str
    network_type: str
    address_type: str
    address: str


class SdpMedia(NamedTuple):
    """One `m=` stream: `m=audio 6004 RTP/AVP 0 8 101` with its own `c=` address if it has one.

    `codecs` names each format in order: its `a=rtpmap` encoding name, else the static payload
    type's name, else the format as written."""

    type: str
    port: int | None
    proto: str
    formats: list[str]
    codecs: list[str]
    connection_address: str | None
    attributes: list[str]


class Sdp(NamedTuple):
    """A parsed SDP body. `connection_address` is the session-level `c=` address, else the first
    media-level one."""

    version: str | None
    origin: SdpOrigin | None
    session_name: str | None
    connection: str | None  # the `c=` value as written: "IN IP4 127.0.0.1"
    connection_address: str | None
    media: list[SdpMedia]


def parse_sdp(body: bytes) -> Sdp:
    """Any bytes -> Sdp; lines that are not `x=value` are skipped."""
    version: str | None = None
    origin: SdpOrigin | None = None
    session_name: str | None = None
    connection: str | None = None
    address: str | None = None
    media: list[SdpMedia] = []
    current: dict[str, object] | None = None
    streams: list[dict[str, object]] = []
    for raw_line in body.decode("utf-8", "replace").split("\n"):
        line = raw_line.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            words = value.split()
            port_text = words[1].partition("/")[0] if len(words) > 1 else ""
            current = {
                "type": words[0] if words else "",
                "port": int(port_text) if port_text.isdigit() and len(port_text) <= 5 else None,
                "proto": words[2] if len(words) > 2 else "",
                "formats": words[3:],
                "rtpmap": {},
                "c": None,
                "a": [],
            }
            streams.append(current)
        elif current is not None:
            if kind == "c":
                current["c"] = _connection_address(value)
            elif kind == "a":
                attributes = current["a"]
                assert isinstance(attributes, list)
                attributes.append(value)
                if value[:7].lower() == "rtpmap:":
                    pt, _, encoding = value[7:].partition(" ")
                    rtpmap = current["rtpmap"]
                    assert isinstance(rtpmap, dict)
                    rtpmap.setdefault(pt.strip(), encoding.strip().partition("/")[0])
        elif kind == "v":
            version = value
        elif kind == "o":
            words = value.split()
            if len(words) == 6:
                origin = SdpOrigin(*words)
        elif kind == "s":
            session_name = value
        elif kind == "c" and connection is None:
            connection, address = value, _connection_address(value)
    for stream in streams:
        formats = stream["formats"]
        rtpmap = stream["rtpmap"]
        assert isinstance(formats, list) and isinstance(rtpmap, dict)
        codecs = [str(rtpmap.get(fmt) or STATIC_PAYLOAD_TYPES.get(fmt, fmt)) for fmt in formats]
        media_address = stream["c"]
        assert media_address is None or isinstance(media_address, str)
        attributes = stream["a"]
        assert isinstance(attributes, list)
        port = stream["port"]
        assert port is None or isinstance(port, int)
        media.append(SdpMedia(str(stream["type"]), port, str(stream["proto"]), formats, codecs, media_address, attributes))
    if address is None:
        address = next((m.connection_address for m in media if m.connection_address), None)
    return Sdp(version, origin, session_name, connection, address, media)


def _connection_address(value: str) -> str | None:
    """`IN IP4 224.2.1.1/127/3` -> `224.2.1.1`."""
    words = value.split()
    return words[2].partition("/")[0] if len(words) >= 3 else None


def find_sdp(content_type: str | None, body: bytes, depth: int = 0) -> bytes | None:
    """The SDP in a body: the body itself when its type is application/sdp, else the first
    application/sdp part of a multipart body (nested multiparts too)."""
    if not content_type:
        return None
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/sdp":
        return body
    if not media_type.startswith("multipart/") or depth >= _MAX_MULTIPART_DEPTH:
        return None
    boundary = parse_params(params).get("boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary.encode("utf-8", "replace")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part[1:] if part.startswith(b"\n") else part
        end, skip = part.find(b"\r\n\r\n"), 4
        if part.startswith(b"\r\n"):
            end, skip = 0, 2
        elif part.startswith(b"\n"):
            end, skip = 0, 1
        elif end < 0:
            end, skip = part.find(b"\n\n"), 2
        if end < 0:
            headers, content = part, b""
        else:
            headers, content = part[:end], part[end + skip :]
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        part_type = "text/plain"
        for line in headers.decode("utf-8", "replace").split("\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip().lower() in ("content-type", "c"):
                part_type = value.strip()
        found = find_sdp(part_type, content, depth + 1)
        if found is not None:
            return found
    return None
