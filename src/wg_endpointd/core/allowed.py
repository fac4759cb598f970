"""What a peer's allowed IPs say: where a test datagram can go, and whether they cover an
endpoint (a full tunnel, which then needs a host route for it)."""

from __future__ import annotations

import ipaddress
from typing import Protocol


class Routed(Protocol):
    """A peer as far as its allowed IPs go (config.PeerConfig)."""

    @property
    def allowed_ips(self) -> tuple[str, ...]: ...

    @property
    def route_allowed_ips(self) -> bool: ...


def default_probe_address(allowed_ips: tuple[str, ...]) -> str | None:
    """An address inside the peer's allowed IPs to send liveness datagrams to.

    Prefers a host route (/32, /128), then the first host of the narrowest
    non-default prefix; None for a peer that only has default routes.
    """
    nets = []
    for item in allowed_ips:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue
    nets = [n for n in nets if n.prefixlen > 0]
    if not nets:
        return None
    best = max(nets, key=lambda n: n.prefixlen / n.max_prefixlen)
    if best.num_addresses == 1:
        return str(best.network_address)
    return str(best.network_address + 1)


def covers_endpoint(peer: Routed, address: str) -> bool:
    """True when the peer's routed allowed IPs contain `address` (a full tunnel)."""
    ip = ipaddress.ip_address(address)
    for item in peer.allowed_ips:
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return peer.route_allowed_ips
        except ValueError:
            continue
    return False
