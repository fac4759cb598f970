"""rtnetlink datagrams as values: links, addresses and routes (no I/O).

The layouts and numbers follow the kernel's uapi headers: `struct nlmsghdr`, the message
types and flags in include/uapi/linux/netlink.h; `struct ifinfomsg`, `struct rtmsg`,
`struct rtattr`, `struct rtnexthop`, `struct rtvia`, RTM_*, RTA_*, RTN_*, RTMGRP_* in
include/uapi/linux/rtnetlink.h; `struct ifaddrmsg`, IFA_* and IFA_F_* in
include/uapi/linux/if_addr.h; IFLA_* in include/uapi/linux/if_link.h; IFF_* and IF_OPER_*
in include/uapi/linux/if.h. Numbers are in host byte order, attributes 4-byte aligned.
A truncated or malformed part is skipped, never raised: the kernel is trusted, and a
lost message only costs the daemon a wake-up it would have had.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

# netlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP, NLM_F_REPLACE = 0x01, 0x02, 0x300, 0x100
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
# rtnetlink.h: message types
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
# rtnetlink.h: multicast groups for bind()
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE
          | RTMGRP_IPV6_ROUTE)
# rtnetlink.h: route attributes, tables, types, scopes, flags
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY = 1, 4, 5, 6
RTA_MULTIPATH, RTA_TABLE, RTA_VIA, RTA_NH_ID = 9, 15, 18, 30
RT_TABLE_MAIN = 254
RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW = 1, 6, 7, 8, 9
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTM_F_CLONED = 0x200
# if_addr.h
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_TENTATIVE = 0x08, 0x20, 0x40
# if_link.h, if.h
IFLA_IFNAME, IFLA_OPERSTATE = 3, 16
IFF_UP, IFF_LOOPBACK, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x8, 0x40, 0x10000
IF_OPER_UP = 6
AF_INET, AF_INET6 = 2, 10  # linux/socket.h

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol,
#                                       scope, type, flags
_RTATTR = struct.Struct("=HH")  # len, type
_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex
_U32 = struct.Struct("=I")


@dataclass(frozen=True, slots=True)
class Link:
    """RTM_NEWLINK / RTM_DELLINK."""

    new: bool
    index: int
    name: str
    flags: int  # IFF_*
    operstate: int | None = None  # IF_OPER_*

    @property
    def usable(self) -> bool:
        """Up, with carrier, operationally up (IFF_RUNNING: IF_OPER_UP or UNKNOWN)."""
        want = IFF_UP | IFF_RUNNING | IFF_LOWER_UP
        return self.new and self.flags & want == want

    @property
    def loopback(self) -> bool:
        return bool(self.flags & IFF_LOOPBACK)


@dataclass(frozen=True, slots=True)
class Addr:
    """RTM_NEWADDR / RTM_DELADDR."""

    new: bool
    index: int
    family: int
    prefixlen: int
    flags: int  # IFA_F_*, from IFA_FLAGS when present
    scope: int
    address: str  # IFA_LOCAL, else IFA_ADDRESS
    label: str = ""  # IFA_LABEL (IPv4 only)

    @property
    def preferred(self) -> bool:
        """Usable as a source for new connections: DAD done and not deprecated."""
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED)


@dataclass(frozen=True, slots=True)
class Route:
    """RTM_NEWROUTE / RTM_DELROUTE. `nexthops` holds (gateway, oif) pairs: one for a plain
    route, one per RTA_MULTIPATH entry, or ("nexthop id N", None) for a nexthop object."""

    new: bool
    family: int
    dst_len: int
    table: int
    protocol: int
    type: int
    scope: int = RT_SCOPE_UNIVERSE
    tos: int = 0
    rflags: int = 0  # rtm_flags (RTM_F_*)
    nlflags: int = 0  # nlmsg_flags (NLM_F_REPLACE)
    dst: str | None = None
    priority: int = 0
    nexthops: tuple[tuple[str | None, int | None], ...] = ()


Message = Link | Addr | Route


def messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """The (type, flags, seq, payload) of each nlmsghdr in one datagram."""
    out, off = [], 0
    while off + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > len(data):
            break
        out.append((kind, flags, seq, data[off + _NLMSGHDR.size:off + length]))
        off += (length + 3) & ~3
    return out


def attributes(data: bytes, off: int = 0) -> dict[int, bytes]:
    """rtattrs from `off` on; the last of a repeated type wins."""
    out = {}
    while off + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, off)
        if length < _RTATTR.size or off + length > len(data):
            break
        out[kind & NLA_TYPE_MASK] = data[off + _RTATTR.size:off + length]
        off += (length + 3) & ~3
    return out


def _text(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace") if raw else ""


def _u32(raw: bytes | None, default: int = 0) -> int:
    return int(_U32.unpack_from(raw)[0]) if raw and len(raw) >= 4 else default


def _ip(raw: bytes | None) -> str | None:
    if raw is None or len(raw) not in (4, 16):
        return None
    return str(ipaddress.ip_address(raw))


def _via(raw: bytes | None) -> str | None:
    """RTA_VIA: a u16 family, then the address (an IPv4 route via an IPv6 gateway)."""
    return _ip(raw[2:]) if raw and len(raw) > 2 else None


def _gateway(attrs: dict[int, bytes]) -> str | None:
    return _ip(attrs.get(RTA_GATEWAY)) or _via(attrs.get(RTA_VIA))


def _multipath(raw: bytes) -> tuple[tuple[str | None, int | None], ...]:
    out, off = [], 0
    while off + _RTNEXTHOP.size <= len(raw):
        length, _flags, _hops, ifindex = _RTNEXTHOP.unpack_from(raw, off)
        if length < _RTNEXTHOP.size or off + length > len(raw):
            break
        attrs = attributes(raw[off:off + length], _RTNEXTHOP.size)
        out.append((_gateway(attrs), ifindex or None))
        off += (length + 3) & ~3
    return tuple(out)


def _link(kind: int, payload: bytes) -> Link | None:
    if len(payload) < _IFINFOMSG.size:
        return None
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
    attrs = attributes(payload, _IFINFOMSG.size)
    oper = attrs.get(IFLA_OPERSTATE)
    return Link(kind == RTM_NEWLINK, index, _text(attrs.get(IFLA_IFNAME)), flags,
                oper[0] if oper else None)


def _addr(kind: int, payload: bytes) -> Addr | None:
    if len(payload) < _IFADDRMSG.size:
        return None
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(payload)
    attrs = attributes(payload, _IFADDRMSG.size)
    address = _ip(attrs.get(IFA_LOCAL)) or _ip(attrs.get(IFA_ADDRESS))
    if address is None:
        return None
    return Addr(kind == RTM_NEWADDR, index, family, prefixlen,
                _u32(attrs.get(IFA_FLAGS), flags), scope, address, _text(attrs.get(IFA_LABEL)))


def _route(kind: int, nlflags: int, payload: bytes) -> Route | None:
    if len(payload) < _RTMSG.size:
        return None
    family, dst_len, _src, tos, table, proto, scope, rtype, rflags = _RTMSG.unpack_from(payload)
    attrs = attributes(payload, _RTMSG.size)
    if RTA_MULTIPATH in attrs:
        hops = _multipath(attrs[RTA_MULTIPATH])
    elif RTA_NH_ID in attrs:
        hops = ((f"nexthop id {_u32(attrs[RTA_NH_ID])}", None),)
    else:
        oif = _u32(attrs.get(RTA_OIF)) or None
        gateway = _gateway(attrs)
        hops = ((gateway, oif),) if gateway or oif else ()
    return Route(kind == RTM_NEWROUTE, family, dst_len, _u32(attrs.get(RTA_TABLE), table), proto,
                 rtype, scope, tos, rflags, nlflags, _ip(attrs.get(RTA_DST)),
                 _u32(attrs.get(RTA_PRIORITY)), hops)


def decode(data: bytes) -> list[Message]:
    """The link, address and route messages in one datagram; anything else is skipped."""
    out: list[Message] = []
    for kind, flags, _seq, payload in messages(data):
        msg: Message | None = None
        if kind in (RTM_NEWLINK, RTM_DELLINK):
            msg = _link(kind, payload)
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            msg = _addr(kind, payload)
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
            msg = _route(kind, flags, payload)
        if msg is not None:
            out.append(msg)
    return out


def dump_request(kind: int, seq: int, family: int = 0) -> bytes:
    """An RTM_GET* dump request: nlmsghdr, then the message's own header (ifinfomsg,
    ifaddrmsg or rtmsg) with only its family set."""
    size = {RTM_GETLINK: _IFINFOMSG.size, RTM_GETADDR: _IFADDRMSG.size}.get(kind, _RTMSG.size)
    body = struct.pack("=B", family) + bytes(size - 1)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP,
                          seq, 0) + body
