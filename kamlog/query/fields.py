"""The fields of kamlog's documents and their types: what a query may name, how its values are
compared, and what the Elasticsearch templates map (one list for the query language and both stores).

Types are Elasticsearch's: `keyword` (exact, case-sensitive), `text` (words, `message` only),
`long`, `date_nanos`, `ip`. Fields that hold a list (`sip.via.original`) match when any item does,
in both stores, as Elasticsearch does."""

from __future__ import annotations

from typing import Final, Literal

FieldType = Literal["keyword", "text", "long", "date_nanos", "ip"]

_KEYWORD: Final = """
    event.dataset event.id
    log.level log.logger log.origin.file.name log.origin.function log.file.path log.file.device_id
    log.file.inode host.hostname process.name error.message
    kamailio.log_prefix kamailio.grammar
    kamlog.call kamlog.call_state kamlog.timeline kamlog.attribution kamlog.capture.file kamlog.capture.via kamlog.capture.parts kamlog.node
    network.protocol network.transport
    sip.call_id sip.link_call_ids sip.type sip.method sip.status sip.version sip.cseq.method
    sip.uri.original sip.uri.scheme sip.uri.username sip.uri.host
    sip.from.display_info sip.from.tag sip.from.uri.original sip.from.uri.scheme sip.from.uri.username sip.from.uri.host
    sip.to.display_info sip.to.tag sip.to.uri.original sip.to.uri.scheme sip.to.uri.username sip.to.uri.host
    sip.contact.line sip.contact.display_info sip.contact.transport sip.contact.expires sip.contact.q
    sip.contact.uri.original sip.contact.uri.scheme sip.contact.uri.username sip.contact.uri.host
    sip.via.original sip.via.transport sip.via.sent_by.address sip.via.received.address sip.via.branch
    sip.user_agent.original sip.server sip.content_type sip.allow sip.supported sip.accept
    sip.sdp.version sip.sdp.owner.username sip.sdp.owner.session_id sip.sdp.owner.version sip.sdp.owner.ip
    sip.sdp.session.name sip.sdp.connection.info sip.sdp.connection.address
    sip.sdp.media.type sip.sdp.media.proto sip.sdp.media.format sip.sdp.media.codecs
    sip.sipdump.transport
"""
_LONG: Final = """
    process.pid kamailio.process_no kamailio.level log.origin.file.line log.offset kamlog.capture.frame kamlog.sequence
    source.port destination.port sip.code sip.cseq.code sip.content_length sip.max_forwards
    sip.uri.port sip.from.uri.port sip.to.uri.port sip.contact.uri.port sip.via.sent_by.port sip.via.rport
    sip.sdp.media.port sip.sipdump.pid sip.sipdump.pno
"""

FIELDS: Final[dict[str, FieldType]] = {
    "@timestamp": "date_nanos",
    "kamlog.original_timestamp": "date_nanos",
    "message": "text",
    "source.ip": "ip",
    "destination.ip": "ip",
    **{name: "keyword" for name in _KEYWORD.split()},
    **{name: "long" for name in _LONG.split()},
}

# A query without a field searches this one (Kibana searches `index.query.default_field`, which
# kamlog's template sets to the same).
DEFAULT_FIELD: Final = "message"
