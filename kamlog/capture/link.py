"""Link layers: where in a frame its IP packet starts.

:func:`link_ip` takes a frame's LINKTYPE_* and bytes and says what the frame carries (an
ethertype) and at which offset. The link types read are the ones a Kamailio host's captures
have: Ethernet (with 802.1Q, 802.1ad/QinQ and old 0x9100 VLAN tags, and 802.3 frames with
LLC/SNAP), Linux cooked captures v1 (``tcpdump -i any`` before libpcap 1.10, or ``-y LINUX_SLL``)
and v2 (``tcpdump -i any`` on Debian 12), BSD loopback (NULL, family in the writer's byte order,
and LOOP, in network order), raw IP (101, 12 and 14, and the IPv4-only 228 and IPv6-only 229),
and Linux NFLOG (``tcpdump -i nflog:N``).
"""

from __future__ import annotations

from typing import Final

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
#: link_ip's first value when the link header itself is cut short.
LINK_TRUNCATED: Final = -1
#: link_ip's first value for a link type not read here.
LINK_UNKNOWN: Final = -2

LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW_12: Final = 12  # DLT_RAW on most BSDs, found in old files
LINKTYPE_RAW_14: Final = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_NFLOG: Final = 239
LINKTYPE_LINUX_SLL2: Final = 276

_VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})
# Address families of IPv6 in BSD loopback headers: NetBSD/OpenBSD, FreeBSD, Darwin (as
# Wireshark reads them).
_AF_INET: Final = 2
_AF_INET6: Final = frozenset({24, 28, 30})
_NFULA_PAYLOAD: Final = 9


def _by_version(data: bytes, off: int) -> tuple[int, int]:
    """Raw IP at ``off``: its ethertype from the version nibble."""
    if len(data) <= off:
        return LINK_TRUNCATED, -1
    version = data[off] >> 4
    if version == 4:
        return ETHERTYPE_IPV4, off
    if version == 6:
        return ETHERTYPE_IPV6, off
    return 0, off


def _family(family: int, data: bytes, off: int) -> tuple[int, int]:
    if family == _AF_INET or family in _AF_INET6:
        return _by_version(data, off)
    return 0, off


def link_ip(linktype: int, data: bytes) -> tuple[int, int]:
    """``(ethertype, offset)`` of what the frame carries.

    ``(ETHERTYPE_IPV4, n)`` or ``(ETHERTYPE_IPV6, n)``: an IP packet starts at ``data[n]``;
    another ethertype ``>= 0``: not IP (ARP, LLDP, ...; 0 when the link layer gives no
    ethertype); :data:`LINK_TRUNCATED`: the link header is cut short; :data:`LINK_UNKNOWN`: the
    link type is not one read here. Never raises on any bytes."""
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return LINK_TRUNCATED, -1
        etype = (data[12] << 8) | data[13]
        off = 14
        while etype in _VLAN_TPIDS:
            if n < off + 4:
                return LINK_TRUNCATED, -1
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if etype <= 1500:  # an 802.3 length: LLC, with SNAP carrying an ethertype
            if n < off + 8:
                return LINK_TRUNCATED, -1
            if data[off:off + 3] != b"\xaa\xaa\x03":
                return 0, off
            etype = (data[off + 6] << 8) | data[off + 7]
            off += 8
        return etype, off
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return LINK_TRUNCATED, -1
        return (data[0] << 8) | data[1], 20
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return LINK_TRUNCATED, -1
        return (data[14] << 8) | data[15], 16
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14):
        return _by_version(data, 0)
    if linktype == LINKTYPE_IPV4:
        return (ETHERTYPE_IPV4, 0) if n else (LINK_TRUNCATED, -1)
    if linktype == LINKTYPE_IPV6:
        return (ETHERTYPE_IPV6, 0) if n else (LINK_TRUNCATED, -1)
    if linktype == LINKTYPE_NULL:
        if n < 4:
            return LINK_TRUNCATED, -1
        # In the byte order of the machine that wrote it: a family is small, so the end that
        # holds the non-zero byte tells.
        little = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)
        big = (data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]
        return _family(min(little, big), data, 4)
    if linktype == LINKTYPE_LOOP:
        if n < 4:
            return LINK_TRUNCATED, -1
        return _family((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3], data, 4)
    if linktype == LINKTYPE_NFLOG:
        return _nflog(data)
    return LINK_UNKNOWN, -1


def _nflog(data: bytes) -> tuple[int, int]:
    """NFLOG: a 4-byte header (family, version, resource id), then TLVs whose length and type
    are in the byte order of the host that logged (told apart by which reading is plausible);
    the packet is the value of the NFULA_PAYLOAD TLV."""
    n = len(data)
    if n < 4:
        return LINK_TRUNCATED, -1
    pos = 4
    little: bool | None = None
    while pos + 4 <= n:
        le_len = data[pos] | (data[pos + 1] << 8)
        be_len = (data[pos] << 8) | data[pos + 1]
        if little is None:
            # Types are small numbers: the order in which the type reads small is the host's.
            le_type = (data[pos + 2] | (data[pos + 3] << 8)) & 0x7FFF
            be_type = ((data[pos + 2] << 8) | data[pos + 3]) & 0x7FFF
            little = le_type <= be_type if le_type != be_type else le_len <= be_len
        tlv_len = le_len if little else be_len
        tlv_type = (data[pos + 2] | (data[pos + 3] << 8) if little
                    else (data[pos + 2] << 8) | data[pos + 3]) & 0x7FFF
        if tlv_len < 4:
            return 0, -1  # malformed TLV list: nothing found
        if tlv_type == _NFULA_PAYLOAD:
            # The header's family is AF_INET or AF_INET6 (AF_UNSPEC from some bridge rules):
            # the packet's version nibble is the surer guide. If the TLV runs past the captured
            # bytes, the IP length bounds the packet anyway.
            return _by_version(data, pos + 4)
        pos += (tlv_len + 3) & ~3
    return 0, -1  # no payload (an NFLOG rule without one)
