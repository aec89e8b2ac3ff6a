"""SipMessage -> a flat dict with Packetbeat's `sip.*` names and ECS names, like
kamlog.sinks.ecs does for log records: what the JSON, SQLite and Elasticsearch sinks write.

Where Packetbeat has no name, an extension in its style: `sip.via.branch` of the top Via beside
`sip.via.original` (all of them), `sip.server`, `sip.sdp.media.*` (one list entry per `m=`
line), `sip.link_call_ids`, `sip.sipdump.*`; the capture origin under `kamlog.capture.*`
(ECS has none)."""

from __future__ import annotations

from typing import Any, Final

from .fields import NameAddr
from .message import LINK_HEADERS, SipMessage

DATASET: Final = "kamailio.sip"


def sip_document(
    message: SipMessage, *, link_headers: tuple[str, ...] = LINK_HEADERS, original: bool = False
) -> dict[str, Any]:
    """The document of one message; fields it does not have are left out. `original` adds the
    raw message as `event.original` (decoded as UTF-8, bad bytes replaced)."""
    payload = message.payload
    doc: dict[str, Any] = {"@timestamp": message.timestamp, "event.dataset": DATASET}
    if message.method is not None:
        doc["sip.type"] = "request"
        doc["sip.method"] = message.method
        uri = message.uri
        if uri is not None:
            doc["sip.uri.original"] = uri.original
            _uri_parts(doc, "sip.uri.", uri.scheme, uri.user, uri.host, uri.port)
    else:
        doc["sip.type"] = "response"
        if message.status_code is not None:
            doc["sip.code"] = message.status_code
        if message.reason:
            doc["sip.status"] = message.reason
    if message.version:
        doc["sip.version"] = message.version
    if message.call_id is not None:
        doc["sip.call_id"] = message.call_id
    if message.cseq_num is not None:
        doc["sip.cseq.code"] = message.cseq_num
    if message.cseq_method is not None:
        doc["sip.cseq.method"] = message.cseq_method
    _name_addr(doc, "sip.from.", message.from_)
    _name_addr(doc, "sip.to.", message.to)
    vias = message.vias
    if vias:
        doc["sip.via.original"] = [via.original for via in vias]
        top = vias[0]
        if top.transport:
            doc["sip.via.transport"] = top.transport
        if top.host:
            doc["sip.via.sent_by.address"] = top.host
        if top.port is not None:
            doc["sip.via.sent_by.port"] = top.port
        if top.received:
            doc["sip.via.received.address"] = top.received
        if top.rport is not None:
            doc["sip.via.rport"] = top.rport
        if top.branch:
            doc["sip.via.branch"] = top.branch
    contacts = message.contacts
    if contacts:
        first = contacts[0]
        doc["sip.contact.line"] = first.original
        _name_addr(doc, "sip.contact.", first)
        transport = first.uri.params.get("transport")
        if transport:
            doc["sip.contact.transport"] = transport.lower()
        for param in ("expires", "q"):
            value = first.params.get(param)
            if value is not None:
                doc["sip.contact." + param] = value
    headers = message.headers
    for name, key in (("User-Agent", "sip.user_agent.original"), ("Server", "sip.server"),
                      ("Content-Type", "sip.content_type")):  # fmt: skip
        value = headers.get(name)
        if value is not None:
            doc[key] = value
    for key, number in (("sip.content_length", message.content_length), ("sip.max_forwards", message.max_forwards)):
        if number is not None:
            doc[key] = number
    for name, key in (("Allow", "sip.allow"), ("Supported", "sip.supported"), ("Accept", "sip.accept")):
        values = headers.get_list(name)
        if values:
            doc[key] = values
    sdp = message.sdp
    if sdp is not None:
        if sdp.version is not None:
            doc["sip.sdp.version"] = sdp.version
        if sdp.origin is not None:
            doc["sip.sdp.owner.username"] = sdp.origin.username
            doc["sip.sdp.owner.session_id"] = sdp.origin.session_id
            doc["sip.sdp.owner.version"] = sdp.origin.version
            doc["sip.sdp.owner.ip"] = sdp.origin.address
        if sdp.session_name is not None:
            doc["sip.sdp.session.name"] = sdp.session_name
        if sdp.connection is not None:
            doc["sip.sdp.connection.info"] = sdp.connection
        if sdp.connection_address is not None:
            doc["sip.sdp.connection.address"] = sdp.connection_address
        if sdp.media:
            doc["sip.sdp.media.type"] = [m.type for m in sdp.media]
            doc["sip.sdp.media.port"] = [m.port for m in sdp.media]
            doc["sip.sdp.media.proto"] = [m.proto for m in sdp.media]
            doc["sip.sdp.media.format"] = [" ".join(m.formats) for m in sdp.media]
            doc["sip.sdp.media.codecs"] = list(dict.fromkeys(c for m in sdp.media for c in m.codecs))
    links = message.call_ids_in(link_headers)
    if links:
        doc["sip.link_call_ids"] = links
    sipdump = message.sipdump
    if sipdump is not None:
        if sipdump.transport:
            doc["sip.sipdump.transport"] = sipdump.transport
        if sipdump.pid is not None:
            doc["sip.sipdump.pid"] = sipdump.pid
        if sipdump.pno is not None:
            doc["sip.sipdump.pno"] = sipdump.pno
    doc["source.ip"] = payload.src_ip
    doc["source.port"] = payload.src_port
    doc["destination.ip"] = payload.dst_ip
    doc["destination.port"] = payload.dst_port
    doc["network.transport"] = payload.transport
    doc["network.protocol"] = "sip"
    doc["kamlog.capture.file"] = payload.file
    doc["kamlog.capture.frame"] = payload.frame
    if payload.via:
        doc["kamlog.capture.via"] = payload.via
    if payload.parts:
        doc["kamlog.capture.parts"] = list(payload.parts)
    if original:
        doc["event.original"] = message.raw.decode("utf-8", "replace")
    error = message.error
    if error:
        doc["error.message"] = error
    return doc


def _name_addr(doc: dict[str, Any], prefix: str, value: NameAddr | None) -> None:
    if value is None:
        return
    if value.display:
        doc[prefix + "display_info"] = value.display
    doc[prefix + "uri.original"] = value.uri.original
    uri = value.uri
    _uri_parts(doc, prefix + "uri.", uri.scheme, uri.user, uri.host, uri.port)
    tag = value.tag
    if tag:
        doc[prefix + "tag"] = tag


def _uri_parts(doc: dict[str, Any], prefix: str, scheme: str | None, user: str | None, host: str | None, port: int | None) -> None:
    if scheme:
        doc[prefix + "scheme"] = scheme
    if user:
        doc[prefix + "username"] = user
    if host:
        doc[prefix + "host"] = host
    if port is not None:
        doc[prefix + "port"] = port
