"""Candidate endpoints: dedupe, drop IPv4-mapped addresses and addresses that are never
a remote endpoint, RFC 8305 ordering."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from .model import Endpoint, IfAddress
from .validate import never_endpoint

_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def preferred_family(setting: str) -> int:
    """`ipv4` prefers 4; `ipv6` and `auto` prefer 6 (RFC 6724's default order)."""
    return 4 if setting == "ipv4" else 6


def clean(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Normalize, drop duplicates and IPv4-mapped IPv6 addresses, keep first-seen order."""
    seen: dict[Endpoint, None] = {}
    for ep in endpoints:
        ip = ipaddress.ip_address(ep.address)
        if ip.version == 6 and ip in _MAPPED:
            continue
        seen.setdefault(Endpoint(str(ip), ep.port), None)
    return list(seen)


def bogus(address: str, own: Iterable[IfAddress] = ()) -> str | None:
    """Why `address` can never be a remote endpoint, else None: loopback, unspecified,
    multicast, broadcast, link-local, IPv4-mapped, an address of this host (`own`), or
    the broadcast address of one of this host's IPv4 subnets."""
    why = never_endpoint(address)
    if why is not None:
        return why
    ip = ipaddress.ip_address(address)
    for mine in own:
        if ip == mine.ip:
            return "an address of this host"
        net = mine.network
        if net.version == 4 and net.prefixlen < 31 and ip == net.broadcast_address:
            return f"the broadcast address of this host's subnet {net}"
    return None


def interleave(endpoints: Sequence[Endpoint], prefer: int, first_count: int = 1) -> list[Endpoint]:
    """RFC 8305 §4: `first_count` of the preferred family, then alternate families."""
    first = [e for e in endpoints if e.family == prefer]
    other = [e for e in endpoints if e.family != prefer]
    ordered = first[:first_count]
    first = first[first_count:]
    while first or other:
        if other:
            ordered.append(other.pop(0))
        if first:
            ordered.append(first.pop(0))
    return ordered
