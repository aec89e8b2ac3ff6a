"""SIP: transport payload bytes -> `SipMessage` (eager essentials, lazy rest) -> ECS document."""

from .document import DATASET, sip_document
from .fields import NameAddr, SipDump, Uri, Via
from .headers import COMPACT_FORMS, Headers
from .message import LINK_HEADERS, SipMessage, parse_sip, rfc3339
from .sdp import Sdp, SdpMedia, SdpOrigin

__all__ = [
    "COMPACT_FORMS", "DATASET", "LINK_HEADERS", "Headers", "NameAddr", "Sdp", "SdpMedia", "SdpOrigin",
    "SipDump", "SipMessage", "Uri", "Via", "parse_sip", "rfc3339", "sip_document",
]  # fmt: skip
