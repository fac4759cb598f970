"""Which rtnetlink changes can change a peer's path (no I/O).

`NetWatch` keeps what it was told of links, global addresses and default routes, and
answers each message with a short reason when it is a real change that can move a
peer's path, else None:

- a default route (dst_len 0) in a watched table (main, or any the caller names) appears,
  goes, or is replaced by another (a new gateway or device);
- a global address appears or goes, or becomes usable (IPv6 DAD done: the NEWADDR that
  clears IFA_F_TENTATIVE) or stops being preferred;
- an uplink (a link carrying such a default route) goes down or comes back up.

Never: the names in `ignore` (the WireGuard interfaces themselves), loopback, routes with
protocol 186 (the daemon's own, system/routes.py), other routes, link-local and host
scope addresses, and the same state told again (RA lifetime refreshes, a route replaced
by itself, a NEWLINK with the same flags).

The kernel removes IPv4 routes without RTM_DELROUTE when their link goes down or their
address goes (a known design choice: see libnl issue #340, finit issue #170), so such
routes are forgotten here too, and their return counts as new.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .netevents import (
    AF_INET,
    IFF_UP,
    NLM_F_REPLACE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTM_F_CLONED,
    RTN_BLACKHOLE,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    Addr,
    Link,
    Message,
    Route,
)

OWN_PROTO = 186  # the daemon's own routes (system/routes.py PROTO)
_TYPES = {RTN_UNICAST: "", RTN_BLACKHOLE: "blackhole ", RTN_UNREACHABLE: "unreachable ",
          RTN_PROHIBIT: "prohibit ", RTN_THROW: "throw "}
Hop = tuple[str | None, int | None]


@dataclass(frozen=True, slots=True)
class DefaultRoute:
    """A default route as the kernel tells it; `slot` is what a replace replaces."""

    family: int
    table: int
    priority: int
    tos: int
    type: int
    nexthops: tuple[Hop, ...]

    @property
    def slot(self) -> tuple[int, int, int, int]:
        return self.family, self.table, self.priority, self.tos


class NetWatch:
    """What is known of the host's links, global addresses and default routes."""

    def __init__(self, tables: Collection[int] = ()) -> None:
        self.tables = frozenset({RT_TABLE_MAIN, *tables})
        self.links: dict[int, Link] = {}
        self.addrs: dict[tuple[int, str, int], bool] = {}  # (index, address, len) -> preferred
        self.routes: set[DefaultRoute] = set()

    def seed(self, msgs: Iterable[Message]) -> None:
        """Start again from a dump (at start, after a lost message): nothing is reported."""
        self.links.clear()
        self.addrs.clear()
        self.routes.clear()
        for msg in msgs:
            self.feed(msg, ())

    def feed(self, msg: Message, ignore: Collection[str]) -> str | None:
        """Take one message in; a short reason when it can change a peer's path."""
        if isinstance(msg, Link):
            return self._link(msg, ignore)
        if isinstance(msg, Addr):
            return self._addr(msg, ignore)
        return self._route(msg, ignore)

    # -- names ---------------------------------------------------------------------

    def name(self, index: int | None) -> str:
        link = self.links.get(index or 0)
        return link.name if link else f"ifindex {index}"

    def _skip(self, index: int | None, ignore: Collection[str]) -> bool:
        """A WireGuard interface or loopback: its changes never wake anything."""
        link = self.links.get(index or 0)
        return link is not None and (link.loopback or link.name in ignore)

    def _uplink(self, index: int, ignore: Collection[str]) -> bool:
        return any(oif == index for r in self._live(ignore) for _, oif in r.nexthops)

    def _live(self, ignore: Collection[str]) -> list[DefaultRoute]:
        return [r for r in self.routes if not self._skip_route(r, ignore)]

    def _skip_route(self, route: DefaultRoute, ignore: Collection[str]) -> bool:
        oifs = [oif for _, oif in route.nexthops if oif]
        return bool(oifs) and all(self._skip(oif, ignore) for oif in oifs)

    def _forget(self, index: int, family: int | None = None) -> None:
        """Routes through `index` the kernel removes without telling."""
        self.routes = {r for r in self.routes if (family is not None and r.family != family)
                       or all(oif != index for _, oif in r.nexthops)}

    # -- links ---------------------------------------------------------------------

    def _link(self, msg: Link, ignore: Collection[str]) -> str | None:
        old = self.links.get(msg.index)
        relevant = (old is not None and old.usable != msg.usable and not msg.loopback
                    and msg.name not in ignore and self._uplink(msg.index, ignore))
        if msg.new:
            self.links[msg.index] = msg
            if not msg.flags & IFF_UP:
                self._forget(msg.index)
        else:
            self.links.pop(msg.index, None)
            self._forget(msg.index)
            self.addrs = {k: v for k, v in self.addrs.items() if k[0] != msg.index}
        if not relevant:
            return None
        if not msg.new:
            return f"uplink {msg.name} removed"
        return f"uplink {msg.name} {'up' if msg.usable else 'down'}"

    # -- addresses -----------------------------------------------------------------

    def _addr(self, msg: Addr, ignore: Collection[str]) -> str | None:
        if not msg.new and msg.family == AF_INET:
            self._forget(msg.index, AF_INET)
        if msg.scope != RT_SCOPE_UNIVERSE or ipaddress.ip_address(msg.address).is_link_local:
            return None
        key = (msg.index, msg.address, msg.prefixlen)
        if msg.new:
            old = self.addrs.get(key)
            self.addrs[key] = msg.preferred
            if old == msg.preferred or (old is None and not msg.preferred):
                return None
            what = ("added" if old is None else "usable" if msg.preferred
                    else "no longer preferred")
        else:
            old = self.addrs.pop(key, None)
            if not (old or (old is None and msg.preferred)):
                return None  # never usable: its going changes nothing
            what = "removed"
        label = msg.label.split(":", 1)[0] or None
        if self._skip(msg.index, ignore) or label in ignore or label == "lo":
            return None
        return f"address {msg.address}/{msg.prefixlen} on {label or self.name(msg.index)} {what}"

    # -- routes --------------------------------------------------------------------

    def _route(self, msg: Route, ignore: Collection[str]) -> str | None:
        if (msg.dst_len != 0 or msg.table not in self.tables or msg.protocol == OWN_PROTO
                or msg.type not in _TYPES or msg.rflags & RTM_F_CLONED):
            return None
        route = DefaultRoute(msg.family, msg.table, msg.priority, msg.tos, msg.type,
                             msg.nexthops)
        if msg.new:
            replaced = ({r for r in self.routes if r.slot == route.slot}
                        if msg.nlflags & NLM_F_REPLACE else set())
            if route in self.routes and replaced <= {route}:
                return None  # told again
            self.routes -= replaced
            self.routes.add(route)
            old = sorted(replaced - {route}, key=repr)
        else:
            hops = set(route.nexthops)
            gone = {r for r in self.routes if r.slot == route.slot
                    and r.type == route.type and (r == route or hops & set(r.nexthops))}
            self.routes -= gone
            old = []
        if self._skip_route(route, ignore):
            return None
        text = self._describe(route)
        if old:
            return f"{text} replaces {self._describe(old[0])}"
        return f"{text} {'added' if msg.new else 'removed'}"

    def _describe(self, route: DefaultRoute) -> str:
        hops = ", ".join(" ".join(filter(None, (f"via {gw}" if gw else None,
                                               f"on {self.name(oif)}" if oif else None)))
                         for gw, oif in route.nexthops)
        table = "" if route.table == RT_TABLE_MAIN else f" (table {route.table})"
        return " ".join(filter(None, (f"{_TYPES[route.type]}default route", hops))) + table
