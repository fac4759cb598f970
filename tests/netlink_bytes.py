"""rtnetlink datagrams built by hand, laid out as include/uapi/linux/{netlink,rtnetlink,
if_addr}.h say (host byte order, 4-byte alignment), for the decoder and listener tests."""

from __future__ import annotations

import ipaddress
import struct

from wg_endpointd.core import netevents as ne


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def attr(kind: int, data: bytes) -> bytes:
    return _pad(struct.pack("=HH", 4 + len(data), kind) + data)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def nlmsg(kind: int, body: bytes, flags: int = 0, seq: int = 0) -> bytes:
    return _pad(struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body)


def link(index: int, name: str, flags: int, operstate: int = ne.IF_OPER_UP,
         new: bool = True) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0)
    body += attr(ne.IFLA_IFNAME, name.encode() + b"\0") + attr(ne.IFLA_OPERSTATE,
                                                                bytes([operstate]))
    return nlmsg(ne.RTM_NEWLINK if new else ne.RTM_DELLINK, body)


UP = ne.IFF_UP | ne.IFF_RUNNING | ne.IFF_LOWER_UP


def addr(index: int, address: str, prefixlen: int, flags: int = 0, scope: int = 0,
         new: bool = True, label: str = "", wide_flags: bool = True) -> bytes:
    family = ne.AF_INET6 if ":" in address else ne.AF_INET
    body = struct.pack("=BBBBI", family, prefixlen, flags & 0xFF, scope, index)
    body += attr(ne.IFA_ADDRESS, ip(address))
    if family == ne.AF_INET:
        body += attr(ne.IFA_LOCAL, ip(address))
    if label:
        body += attr(ne.IFA_LABEL, label.encode() + b"\0")
    if wide_flags:
        body += attr(ne.IFA_FLAGS, u32(flags))
    return nlmsg(ne.RTM_NEWADDR if new else ne.RTM_DELADDR, body)


def route(gateway: str | None = None, oif: int | None = None, dst: str | None = None,
          dst_len: int = 0, table: int = ne.RT_TABLE_MAIN, protocol: int = 4,
          rtype: int = ne.RTN_UNICAST, priority: int | None = None, new: bool = True,
          family: int | None = None, nlflags: int = 0, extra: bytes = b"") -> bytes:
    if family is None:
        family = ne.AF_INET6 if ":" in (gateway or dst or "") else ne.AF_INET
    compat = table if table < 256 else 252  # RT_TABLE_COMPAT: the real one is in RTA_TABLE
    body = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, compat, protocol, 0, rtype, 0)
    body += attr(ne.RTA_TABLE, u32(table))
    if dst is not None:
        body += attr(ne.RTA_DST, ip(dst))
    if priority is not None:
        body += attr(ne.RTA_PRIORITY, u32(priority))
    if gateway is not None:
        body += attr(ne.RTA_GATEWAY, ip(gateway))
    if oif is not None:
        body += attr(ne.RTA_OIF, u32(oif))
    return nlmsg(ne.RTM_NEWROUTE if new else ne.RTM_DELROUTE, body + extra, nlflags)


def nexthop(ifindex: int, gateway: str | None) -> bytes:
    attrs = attr(ne.RTA_GATEWAY, ip(gateway)) if gateway else b""
    return struct.pack("=HBBi", 8 + len(attrs), 0, 0, ifindex) + attrs


def done(seq: int) -> bytes:
    return nlmsg(ne.NLMSG_DONE, u32(0), ne.NLM_F_MULTI, seq)
