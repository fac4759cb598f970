"""Standby groups (`config group` in /etc/config/wg-endpointd), read and validated.

A group names peers of one WireGuard interface, each with its own key, in order
of preference; exactly one of them holds the group's allowed IPs. A broken
group is reported with one line naming the file and section, and left alone.
Pure: the caller passes in the parsed file and the peers read from `network`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from ..core.options import GROUP, convert
from ..core.specs import GroupConfig as GroupConfig
from ..core.specs import normalise as normalise
from . import uci

_OPTIONS = {o.name: o for o in GROUP}


class MemberLike(Protocol):
    """What the reader needs of a peer from /etc/config/network (a PeerConfig)."""

    @property
    def interface(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def allowed_ips(self) -> tuple[str, ...]: ...
    @property
    def managed(self) -> bool: ...
    @property
    def reason(self) -> str: ...


def _prefixes(items: Sequence[str]) -> list[str]:
    out = []
    for item in items:
        for word in item.split():
            try:
                out.append(normalise(word))
            except ValueError:
                continue  # netifd would reject it too; not ours to report here
    return out


def _read_one(sec: uci.Section, peers: Sequence[MemberLike], default_hold: float,
              taken: dict[tuple[str, str], str]) -> GroupConfig:
    """One group; raise ValueError with the reason when it cannot be used."""
    iface = (sec.get("interface") or "").strip()
    ifaces = {p.interface for p in peers}
    if not iface:
        raise ValueError("option interface is missing")
    if iface not in ifaces:
        raise ValueError(f"interface {iface!r} is not a managed wireguard interface with peers")
    keys = [k for item in sec.get_list("peer") for k in item.split()]
    if len(keys) < 2:
        raise ValueError("a group needs at least two `list peer` entries")
    on_iface = {p.public_key: p for p in peers if p.interface == iface}
    for key in keys:
        member = on_iface.get(key)
        if keys.count(key) > 1:
            raise ValueError(f"peer {key[:8]}… is listed twice")
        if member is None:
            raise ValueError(f"peer {key[:8]}… is not a peer of {iface!r}")
        if not member.managed:
            raise ValueError(f"peer {key[:8]}… is not managed ({member.reason})")
        if (iface, key) in taken:
            raise ValueError(f"peer {key[:8]}… is already in group {taken[iface, key]!r}")
    if sec.get_list("allowed_ips"):
        try:
            moving = [normalise(w) for item in sec.get_list("allowed_ips") for w in item.split()]
        except ValueError as exc:
            raise ValueError(f"allowed_ips: {exc}") from None
    else:
        shared = [set(_prefixes(on_iface[k].allowed_ips)) for k in keys[1:]]
        moving = [a for a in _prefixes(on_iface[keys[0]].allowed_ips)
                  if all(a in s for s in shared)]
        if not moving:
            raise ValueError("the members share no allowed IPs in the network config; "
                             "list the ones that move with `list allowed_ips`")
    moving = list(dict.fromkeys(moving))
    for other in on_iface.values():
        if other.public_key in keys:
            continue
        clash = sorted(set(moving) & set(_prefixes(other.allowed_ips)))
        if clash:
            raise ValueError(f"allowed IP {clash[0]} is also peer {other.public_key[:8]}…'s "
                             "own; WireGuard would take it from that peer")
    hold = default_hold
    if "failback_hold" in sec.options:
        try:
            value = convert(_OPTIONS["failback_hold"], sec.get("failback_hold") or "")
        except ValueError as exc:
            raise ValueError(f"failback_hold: {exc}") from None
        hold = value if isinstance(value, float) else default_hold
    return GroupConfig(sec.name or sec.ref, iface, tuple(keys), tuple(moving), hold)


def _unrouted(sec: uci.Section, group: GroupConfig, peers: Sequence[MemberLike],
              path: str) -> list[str]:
    """One line when a listed allowed IP is inside no member's own allowed IPs: netifd
    routes only those into the tunnel, so moving it alone carries no traffic."""
    if not sec.get_list("allowed_ips"):
        return []  # the default is what the members share: theirs by definition
    owned = [ipaddress.ip_network(a) for p in peers if p.interface == group.interface
             and p.public_key in group.members for a in _prefixes(p.allowed_ips)]

    def routed(prefix: str) -> bool:
        net = ipaddress.ip_network(prefix)
        return any(net.network_address in o and net.prefixlen >= o.prefixlen for o in owned)

    lost = [a for a in group.allowed_ips if not routed(a)]
    if not lost:
        return []
    return [f"{path}:{sec.line_of('allowed_ips')}: {sec.ref}: allowed_ips {', '.join(lost)}: "
            "no member has it in its own allowed_ips in the network config, so netifd routes "
            f"no traffic for it into {group.interface} (unless a route of your own does)"]


def read(own: uci.Package | None, peers: Sequence[MemberLike],
         default_hold: float) -> tuple[tuple[GroupConfig, ...], list[str]]:
    """The usable groups, and one line for each broken one (which is left alone)."""
    if own is None:
        return (), []
    groups: list[GroupConfig] = []
    problems: list[str] = []
    taken: dict[tuple[str, str], str] = {}  # (interface, key) -> group name
    for sec in own.by_type("group"):
        try:
            group = _read_one(sec, peers, default_hold, taken)
        except ValueError as exc:
            problems.append(f"{own.path}:{sec.line}: {sec.ref}: {exc}; the group is left alone")
            continue
        for key in group.members:
            taken[group.interface, key] = group.name
        groups.append(group)
        problems += _unrouted(sec, group, peers, own.path)
    return tuple(groups), problems
