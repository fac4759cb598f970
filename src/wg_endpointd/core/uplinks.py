"""How to reach an address outside the tunnels: the uplinks as netifd or the kernel
know them, and the path to pick. Pure: works on the text `ubus` or `ip` printed.

On OpenWrt a full tunnel's default route takes the place of the uplink's in the kernel
(netifd installs routes with NLM_F_REPLACE, openwrt/netifd system-linux.c system_rt),
so the uplink's gateway is known only to netifd. `ubus call network.interface dump`
(openwrt/netifd ubus.c, netifd_handle_dump and netifd_dump_status) lists every
interface with `up`, `l3_device` (only while up), `proto`, `metric`, `ipv4-address` and
`ipv6-address` ({address, mask}) and `route` ({target, mask, nexthop, metric?, source});
a default route has mask 0 and an on-link route the nexthop 0.0.0.0 or ::.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Route:
    net: Net
    gateway: str | None  # None: on the device's link
    metric: int


@dataclass(frozen=True, slots=True)
class Uplink:
    name: str  # netifd's interface name, or the device for the kernel's routes
    device: str
    routes: tuple[Route, ...]  # its subnets (on-link) and its default routes


@dataclass(frozen=True, slots=True)
class Path:
    device: str
    gateway: str | None  # None: the address is on the device's link
    uplink: str


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _subnets(items: object, metric: int) -> list[Route]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            try:
                net = ipaddress.ip_network(f"{item.get('address')}/{item.get('mask')}",
                                           strict=False)
            except ValueError:
                continue
            out.append(Route(net, None, metric))
    return out


def _routes(items: object, metric: int) -> list[Route]:
    """netifd's routes that lead out: default routes, and on-link routes."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            net = ipaddress.ip_network(f"{item.get('target')}/{item.get('mask')}",
                                       strict=False)
            hop = ipaddress.ip_address(str(item.get("nexthop")))
        except ValueError:
            continue
        if net.prefixlen == 0 or hop.is_unspecified:
            out.append(Route(net, None if hop.is_unspecified else str(hop),
                             _int(item.get("metric"), metric)))
    return out


def parse_netifd_dump(text: str) -> list[Uplink]:
    """The interfaces of `ubus call network.interface dump` that are up and could carry
    a WireGuard endpoint (not WireGuard themselves). Raises ValueError on bad JSON."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("interface"), list):
        raise ValueError("no interface list")
    out = []
    for item in data["interface"]:
        if not isinstance(item, dict) or item.get("up") is not True:
            continue
        device = item.get("l3_device")
        if not isinstance(device, str) or not device or item.get("proto") == "wireguard":
            continue
        metric = _int(item.get("metric"))
        routes = (_subnets(item.get("ipv4-address"), metric)
                  + _subnets(item.get("ipv6-address"), metric)
                  + _routes(item.get("route"), metric))
        out.append(Uplink(str(item.get("interface", device)), device, tuple(routes)))
    return out


def parse_kernel_defaults(text: str, version: int) -> list[Uplink]:
    """Default routes from `ip -4 route show default` (version 4) or `ip -6 …` (6):
    `default via GW dev DEV metric N`, or `default dev DEV` on a point-to-point link."""
    everything = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "default" or "dev" not in words[:-1]:
            continue
        device = words[words.index("dev") + 1]
        metric = int(words[words.index("metric") + 1]) if "metric" in words[:-1] else 0
        via = words[words.index("via") + 1] if "via" in words[:-1] else None
        out.append(Uplink(device, device, (Route(everything, via, metric),)))
    return out


def path_to(uplinks: Sequence[Uplink], address: str, avoid: Collection[str]) -> Path | None:
    """The way out to `address` not through a device in `avoid` (the tunnels), as the
    kernel would choose among these routes: the longest matching prefix, then the lowest
    metric. An address on an uplink's own subnet needs no gateway. None when none fits."""
    ip = ipaddress.ip_address(address)
    options = [(-r.net.prefixlen, r.metric, i, u, r) for i, u in enumerate(uplinks)
               if u.device not in avoid for r in u.routes
               if r.net.version == ip.version and ip in r.net]
    if not options:
        return None
    *_, uplink, route = min(options, key=lambda o: (o[0], o[1], o[2]))
    return Path(uplink.device, route.gateway, uplink.name)
