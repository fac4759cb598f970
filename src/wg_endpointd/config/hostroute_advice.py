"""Start-up advice about netifd's endpoint host dependency (issue: tunnel outages
caused by an uplink the tunnel no longer uses).

Unless an interface has `option nohostroute '1'`, netifd's WireGuard handler
(wireguard.sh, proto_wireguard_setup) calls proto_add_host_dependency for each
endpoint `wg show IF endpoints` printed when the interface came up. netifd then
tears the tunnel down whenever the uplink that routes *that* address goes down
(proto-ext.c, host dependency callbacks), even after wg-endpointd moved the peer
to an endpoint on another uplink or address family. With nohostroute set, netifd
neither watches nor routes the endpoint, and wg-endpointd's own host routes
(`host_routes '1'`) keep full tunnels working. Pure: works on parsed UCI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..core.options import TRUE_WORDS
from ..core.validate import ip_literal
from . import uci


class _Host(Protocol):
    @property
    def host(self) -> str: ...


class PeerConfig(Protocol):  # the fields of config.PeerConfig used here
    @property
    def interface(self) -> str: ...
    @property
    def managed(self) -> bool: ...
    @property
    def hosts(self) -> Sequence[_Host]: ...
    @property
    def route_allowed_ips(self) -> bool: ...
    @property
    def allowed_ips(self) -> Sequence[str]: ...
    @property
    def name(self) -> str: ...


def _movable(peers: Sequence[PeerConfig]) -> bool:
    """A managed peer may be moved to another address (several hosts, or a name)."""
    return any(len(p.hosts) > 1 or any(ip_literal(h.host) is None for h in p.hosts)
               for p in peers)


def _full_tunnel(peer: PeerConfig) -> bool:
    return peer.route_allowed_ips and any(a.endswith("/0") for a in peer.allowed_ips)


def advice(network: uci.Package, peers: Sequence[PeerConfig], host_routes: bool) -> list[str]:
    out: list[str] = []
    for iface in dict.fromkeys(p.interface for p in peers if p.managed):
        mine = [p for p in peers if p.managed and p.interface == iface]
        sec = network.find(iface)
        if sec is None:
            continue
        hostroute = (sec.get("nohostroute") or "0") not in TRUE_WORDS
        if hostroute and _movable(mine):
            out.append(
                f"{network.path}: interface '{iface}' has no option nohostroute '1': netifd "
                f"rebuilds {iface} whenever the uplink of the endpoint it resolved itself goes "
                f"down, even after wg-endpointd moved the peer elsewhere; set it (uci set "
                f"network.{iface}.nohostroute=1) and keep host_routes '1'")
        full = [p for p in mine if _full_tunnel(p)]
        if not hostroute and full and not host_routes:
            out.append(
                f"{network.path}: interface '{iface}' has nohostroute '1' and host_routes is "
                f"'0': nothing routes the endpoint of full-tunnel peer {full[0].name} outside "
                f"the tunnel; set host_routes '1' in the wg-endpointd config")
    return out
