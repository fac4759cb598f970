"""What the configuration says, as values: a candidate host, a managed peer, a standby
group, the whole configuration. Built by the `config` layer, used everywhere."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .options import Settings

DEFAULT_PORT = 51820


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A candidate host: a DNS name or an IP literal, with its port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One `wireguard_<iface>` peer combined with its wg-endpointd overrides."""

    interface: str
    public_key: str
    section: str
    description: str = ""
    endpoint_host: str | None = None
    endpoint_port: int = DEFAULT_PORT
    disabled: bool = False
    keepalive: int | None = None
    allowed_ips: tuple[str, ...] = ()
    route_allowed_ips: bool = False
    hosts: tuple[HostSpec, ...] = ()
    family: str = "auto"
    probe_timeout: float = 1.0
    verify_timeout: float = 2.0
    probe_address: str | None = None
    fwmark: int = 0  # wg-quick full tunnels: packets to candidates carry it (SO_MARK)
    managed: bool = True
    reason: str = ""  # why the peer is not managed

    @property
    def name(self) -> str:
        return self.description or self.public_key[:8]

    @property
    def label(self) -> str:
        return f"{self.interface}/{self.name}"


@dataclass(frozen=True, slots=True)
class Config:
    settings: Settings
    peers: tuple[PeerConfig, ...]
    problems: tuple[str, ...] = ()  # one line each, naming file and line or section
    interfaces: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()  # warnings about the rest of the router (never an error)
    groups: tuple[GroupConfig, ...] = ()
    notes: tuple[str, ...] = ()  # info lines (an interface without wg-quick file, say)

    def managed(self) -> list[PeerConfig]:
        return [p for p in self.peers if p.managed]


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str  # the section name, or @group[N] for an anonymous section
    interface: str
    members: tuple[str, ...]  # public keys, preferred first
    allowed_ips: tuple[str, ...]  # the allowed IPs that move, normalised
    failback_hold: float

    @property
    def label(self) -> str:
        return f"{self.interface} group {self.name}"


def normalise(prefix: str) -> str:
    """A prefix as `wg` prints it (`10.0.0.1/24` -> `10.0.0.0/24`); raise ValueError.
    A zone id (`fe80::1%eth0/64`), which Python would take, means nothing to `wg`."""
    if "%" in prefix:
        raise ValueError(f"{prefix.strip()!r}: an allowed IP has no zone id")
    return str(ipaddress.ip_network(prefix.strip(), strict=False))
