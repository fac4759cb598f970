"""Settings and managed peers, built from the `network` and `wg-endpointd` UCI packages.

Every default lives in `Settings`; the shipped files/etc/config/wg-endpointd documents them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass

from . import uci
from .errors import ConfigError
from .validate import ip_literal, is_ifname, is_public_key, parse_hostport, parse_port

FAMILIES = ("auto", "ipv6", "ipv4")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_PORT = 51820


@dataclass(frozen=True, slots=True)
class Settings:
    """Daemon-wide settings (`config globals 'globals'`)."""

    enabled: bool = True
    log_level: str = "info"
    family: str = "auto"
    probe_timeout: float = 1.0
    verify_timeout: float = 2.0
    check_interval: float = 10.0
    dead_after: float = 30.0
    failback_hold: float = 300.0
    resolve_interval: float = 300.0
    backoff_max: float = 300.0
    host_routes: bool = True
    interfaces: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()


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
    problems: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()

    def managed(self) -> list[PeerConfig]:
        return [p for p in self.peers if p.managed]


def _bool(section: uci.Section, option: str, default: bool, path: str) -> bool:
    value = section.get(option)
    if value is None:
        return default
    if value.lower() in ("1", "yes", "on", "true", "enabled"):
        return True
    if value.lower() in ("0", "no", "off", "false", "disabled"):
        return False
    raise ConfigError(f"{section.ref}.{option}: not a boolean: {value!r}", path,
                      section.line_of(option))


def _number(section: uci.Section, option: str, default: float, path: str) -> float:
    value = section.get(option)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1e7:
        raise ConfigError(
            f"{section.ref}.{option}: expected a positive number, got {value!r}",
            path, section.line_of(option),
        )
    return number


def _choice(section: uci.Section, option: str, default: str, allowed: tuple[str, ...],
            path: str) -> str:
    value = section.get(option, default) or default
    if value not in allowed:
        raise ConfigError(
            f"{section.ref}.{option}: {value!r} is not one of {', '.join(allowed)}",
            path, section.line_of(option),
        )
    return value


def _ifnames(section: uci.Section, option: str, path: str) -> tuple[str, ...]:
    names = tuple(n for item in section.get_list(option) for n in item.split())
    for name in names:
        if not is_ifname(name):
            raise ConfigError(f"{section.ref}.{option}: invalid interface name {name!r}",
                              path, section.line_of(option))
    return names


def read_settings(own: uci.Package | None) -> Settings:
    """The globals of /etc/config/wg-endpointd (defaults when the file or section is absent)."""
    base = Settings()
    if own is None:
        return base
    found = [s for s in own.sections if s.type == "globals"]
    if not found:
        return base
    sec, path = found[0], own.path
    return Settings(
        enabled=_bool(sec, "enabled", base.enabled, path),
        log_level=_choice(sec, "log_level", base.log_level, LOG_LEVELS, path),
        family=_choice(sec, "family", base.family, FAMILIES, path),
        probe_timeout=_number(sec, "probe_timeout", base.probe_timeout, path),
        verify_timeout=_number(sec, "verify_timeout", base.verify_timeout, path),
        check_interval=_number(sec, "check_interval", base.check_interval, path),
        dead_after=_number(sec, "dead_after", base.dead_after, path),
        failback_hold=_number(sec, "failback_hold", base.failback_hold, path),
        resolve_interval=_number(sec, "resolve_interval", base.resolve_interval, path),
        backoff_max=_number(sec, "backoff_max", base.backoff_max, path),
        host_routes=_bool(sec, "host_routes", base.host_routes, path),
        interfaces=_ifnames(sec, "interface", path),
        triggers=_ifnames(sec, "trigger", path),
    )


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


def covers_endpoint(peer: PeerConfig, address: str) -> bool:
    """True when the peer's routed allowed IPs contain `address` (a full tunnel)."""
    ip = ipaddress.ip_address(address)
    for item in peer.allowed_ips:
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return peer.route_allowed_ips
        except ValueError:
            continue
    return False


def _override_for(own: uci.Package | None, iface: str, key: str) -> uci.Section | None:
    if own is None:
        return None
    for sec in own.sections:
        if sec.type == "peer" and sec.get("interface") == iface and sec.get("public_key") == key:
            return sec
    return None


def _read_peer(sec: uci.Section, iface: str, settings: Settings, own: uci.Package | None,
               net_path: str) -> PeerConfig:
    """Build one peer; raise ConfigError for invalid values (the peer is then skipped)."""
    key = (sec.get("public_key") or "").strip()
    if not key:
        raise ConfigError(f"{sec.ref}: peer without public_key, skipped", net_path, sec.line)
    if not is_public_key(key):
        raise ConfigError(f"{sec.ref}.public_key: not a WireGuard public key",
                          net_path, sec.line_of("public_key"))
    try:
        port = parse_port(sec.get("endpoint_port") or str(DEFAULT_PORT))
    except ValueError as exc:
        raise ConfigError(f"{sec.ref}.endpoint_port: {exc}", net_path,
                          sec.line_of("endpoint_port")) from None
    keepalive_text = sec.get("persistent_keepalive")
    keepalive = int(keepalive_text) if keepalive_text and keepalive_text.isdigit() else None
    host = (sec.get("endpoint_host") or "").strip() or None
    hosts: list[HostSpec] = []
    if host is not None:
        try:
            name, _ = parse_hostport(host, port)
        except ValueError as exc:
            raise ConfigError(f"{sec.ref}.endpoint_host: {exc}", net_path,
                              sec.line_of("endpoint_host")) from None
        hosts.append(HostSpec(name, port))
    allowed = tuple(a for item in sec.get_list("allowed_ips") for a in item.split())
    peer = PeerConfig(
        interface=iface, public_key=key, section=sec.ref,
        description=sec.get("description") or "", endpoint_host=host, endpoint_port=port,
        disabled=_bool(sec, "disabled", False, net_path), keepalive=keepalive,
        allowed_ips=allowed, route_allowed_ips=_bool(sec, "route_allowed_ips", False, net_path),
        family=settings.family, probe_timeout=settings.probe_timeout,
        verify_timeout=settings.verify_timeout, probe_address=default_probe_address(allowed),
    )
    over = _override_for(own, iface, key)
    if over is not None and own is not None:
        peer = _apply_override(peer, over, own.path, hosts)
    else:
        peer = dataclasses.replace(peer, hosts=tuple(hosts))
    opted_out = over is not None and own is not None and not _bool(over, "managed", True, own.path)
    return _manage_state(peer, opted_out)


def _apply_override(peer: PeerConfig, sec: uci.Section, path: str,
                    hosts: list[HostSpec]) -> PeerConfig:
    for item in sec.get_list("candidate"):
        for text in item.split():
            try:
                name, port = parse_hostport(text, peer.endpoint_port)
            except ValueError as exc:
                raise ConfigError(f"{sec.ref}.candidate: {exc}", path,
                                  sec.line_of("candidate")) from None
            hosts.append(HostSpec(name, port))
    probe_address = peer.probe_address
    if sec.get("probe_address"):
        probe_address = ip_literal(sec.get("probe_address") or "")
        if probe_address is None:
            raise ConfigError(f"{sec.ref}.probe_address: not an IP address", path,
                              sec.line_of("probe_address"))
    return dataclasses.replace(
        peer, hosts=tuple(dict.fromkeys(hosts)),
        family=_choice(sec, "family", peer.family, FAMILIES, path),
        probe_timeout=_number(sec, "probe_timeout", peer.probe_timeout, path),
        verify_timeout=_number(sec, "verify_timeout", peer.verify_timeout, path),
        probe_address=probe_address,
    )


def _manage_state(peer: PeerConfig, opted_out: bool) -> PeerConfig:
    reason = ""
    if opted_out:
        reason = "opted out (managed 0)"
    elif peer.disabled:
        reason = "disabled in network config"
    elif not peer.hosts:
        reason = "passive (no endpoint_host)"
    if reason:
        return dataclasses.replace(peer, managed=False, reason=reason)
    return peer


def build(network: uci.Package, own: uci.Package | None) -> Config:
    """Combine both packages. Per-peer faults become `problems`; global faults raise."""
    settings = read_settings(own)
    wg_ifaces = [s.name for s in network.sections
                 if s.type == "interface" and s.name and s.get("proto") == "wireguard"]
    for wanted in settings.interfaces:
        if wanted not in wg_ifaces:
            raise ConfigError(f"interface {wanted!r} is not a wireguard interface in "
                              f"{network.path}", own.path if own else None)
    managed_ifaces = list(settings.interfaces) or wg_ifaces
    peers: list[PeerConfig] = []
    problems: list[str] = []
    for iface in managed_ifaces:
        if not is_ifname(iface):
            problems.append(f"{network.path}: interface name {iface!r} is not usable, skipped")
            continue
        for sec in network.by_type(f"wireguard_{iface}"):
            try:
                peers.append(_read_peer(sec, iface, settings, own, network.path))
            except ConfigError as exc:
                problems.append(str(exc))
    return Config(settings, tuple(peers), tuple(problems), tuple(managed_ifaces))


def load(config_dir: str) -> Config:
    """Read `network` (required) and `wg-endpointd` (optional) from a UCI directory."""
    network = uci.load(os.path.join(config_dir, "network"))
    own_path = os.path.join(config_dir, "wg-endpointd")
    own = uci.load(own_path) if os.path.exists(own_path) else None
    return build(network, own)
