"""`ubus call network.interface dump` as netifd answers it, for tests.

Follows openwrt/netifd ubus.c: netifd_handle_dump puts every interface in one
`interface` array, each with its name under `interface` and what netifd_dump_status
adds: `up`, `pending`, `available`, `autostart`, `dynamic`; while up `uptime` and
`l3_device`; `proto`; `device`; while up `metric`, `dns_metric`, `delegation`,
`ipv4-address` / `ipv6-address` ({address, mask}), `ipv6-prefix`, `route` (from
interface_ip_dump_route_list: target, mask, nexthop, metric when set, source
"addr/len"), `dns-server`, `dns-search`, `inactive`; then `data`. A default route has
mask 0; a route with no gateway has the nexthop 0.0.0.0 or ::.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Iface:
    name: str
    device: str
    proto: str = "dhcp"
    up: bool = True
    metric: int = 0
    addresses: list[tuple[str, int]] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)  # default routes' next hops

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"interface": self.name, "up": self.up, "pending": False,
                                  "available": True, "autostart": True, "dynamic": False}
        if self.up:
            out.update(uptime=120, l3_device=self.device)
        out.update(proto=self.proto, device=self.device)
        if self.up:
            v4 = [{"address": a, "mask": m} for a, m in self.addresses if ":" not in a]
            v6 = [{"address": a, "mask": m} for a, m in self.addresses if ":" in a]
            routes = [{"target": "::" if ":" in g else "0.0.0.0", "mask": 0, "nexthop": g,
                       "source": "::/0" if ":" in g else "0.0.0.0/0"} for g in self.gateways]
            out.update({"metric": self.metric, "dns_metric": 0, "delegation": True,
                        "ipv4-address": v4, "ipv6-address": v6, "ipv6-prefix": [],
                        "ipv6-prefix-assignment": [], "route": routes, "dns-server": [],
                        "dns-search": [], "neighbors": [],
                        "inactive": {"ipv4-address": [], "ipv6-address": [], "route": [],
                                     "dns-server": [], "dns-search": [], "neighbors": []}})
        out["data"] = {}
        return out


def dump(*ifaces: Iface) -> str:
    """The JSON `ubus call network.interface dump` prints (ubus -S would print it on one
    line; the CLI's default is indented, which readers must not care about)."""
    return json.dumps({"interface": [i.status() for i in ifaces]}, indent="\t")
