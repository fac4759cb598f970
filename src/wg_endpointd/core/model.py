"""Frozen value types that cross module boundaries."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field


def ip_family(address: str) -> int:
    """Return 4 or 6 for an IP literal; raise ValueError otherwise."""
    return ipaddress.ip_address(address).version


IfAddress = ipaddress.IPv4Interface | ipaddress.IPv6Interface  # an address with its prefix


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """A literal WireGuard endpoint: IP address and UDP port."""

    address: str
    port: int

    @property
    def family(self) -> int:
        return ip_family(self.address)

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint | None:
        """Parse `ip:port` or `[v6]:port` as printed by wg; `(none)` gives None.

        Raises ValueError for anything else.
        """
        if text in ("(none)", ""):
            return None
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"endpoint without port: {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        address = str(ipaddress.ip_address(host.split("%", 1)[0]))
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(f"bad port in endpoint {text!r}")
        return cls(address, number)


@dataclass(frozen=True, slots=True)
class PeerDump:
    """One peer as `wg show IF dump` reports it."""

    public_key: str
    endpoint: Endpoint | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int  # Unix seconds; 0 means never
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None  # None means off
    preshared_key: str | None = field(default=None, repr=False)

    def settings(self) -> tuple[str | None, tuple[str, ...], int | None]:
        """The attributes a user or netifd sets (endpoint aside): a change means hands off."""
        return (self.preshared_key, tuple(sorted(self.allowed_ips)), self.keepalive)

    def handshake_age(self, wall_now: float) -> float | None:
        """Seconds since the last handshake, None if there never was one."""
        if self.latest_handshake <= 0:
            return None
        return max(0.0, wall_now - self.latest_handshake)


@dataclass(frozen=True, slots=True)
class InterfaceDump:
    """An interface as `wg show IF dump` reports it (the private key is never kept)."""

    name: str
    listen_port: int
    peers: Mapping[str, PeerDump]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The ICMP hint for one address: RTT in milliseconds, None when unanswered."""

    address: str
    rtt_ms: float | None = None

    @property
    def answered(self) -> bool:
        return self.rtt_ms is not None
