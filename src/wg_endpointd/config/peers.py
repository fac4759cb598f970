"""Settings and managed peers, built from the `network` and `wg-endpointd` UCI packages.

Every default lives in `Settings`; the shipped files/etc/config/wg-endpointd documents them.
"""

from __future__ import annotations

import dataclasses
import os
import re

from ..core.allowed import default_probe_address
from ..core.errors import ConfigError
from ..core.options import FAMILIES as FAMILIES
from ..core.options import LOG_LEVELS as LOG_LEVELS
from ..core.options import PEER, parse_bool, suggest
from ..core.options import Settings as Settings
from ..core.specs import DEFAULT_PORT as DEFAULT_PORT
from ..core.specs import Config as Config
from ..core.specs import HostSpec as HostSpec
from ..core.specs import PeerConfig as PeerConfig
from ..core.validate import (
    drop_never,
    ip_literal,
    is_ifname,
    is_public_key,
    parse_endpoint_host,
    parse_hostport,
    parse_port,
    probe_outside,
)
from . import groupconf, hostroute_advice, uci
from . import overrides as overrides_mod
from .overrides import Override
from .ownfile import option_value
from .ownfile import own_warnings as own_warnings
from .ownfile import read_settings as read_settings

_PEER_OPTIONS = {o.name: o for o in PEER}
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff]")


def display_text(text: str) -> str:
    """A value made safe to print and log on one line: bytes that were not UTF-8 read
    as Latin-1 (uci keeps them), control characters as escapes."""
    return _UNSAFE.sub(lambda m: chr(ord(m[0]) - 0xDC00) if m[0] >= "\udc80"
                       else repr(m[0])[1:-1], text)


def _net_bool(sec: uci.Section, option: str, path: str, notes: list[str]) -> bool:
    """A boolean of the network file read exactly as netifd's config_get_bool."""
    text = sec.get(option)
    value = None if text is None else parse_bool(text)
    if text is not None and value is None:
        notes.append(f"{path}:{sec.line_of(option)}: {sec.ref}.{option}: {text!r} is not a "
                     "boolean netifd knows (it is case-sensitive), so it counts as 0")
    return bool(value)


def _read_peer(sec: uci.Section, iface: str, settings: Settings, over: Override | None,
               net_path: str, own_path: str, notes: list[str]) -> PeerConfig:
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
    keepalive_text = sec.get("persistent_keepalive") or ""
    keepalive = int(keepalive_text) if keepalive_text.isascii() and keepalive_text.isdigit() \
        else None
    host = (sec.get("endpoint_host") or "").strip() or None
    hosts: list[HostSpec] = []
    if host is not None:
        try:
            hosts.append(HostSpec(parse_endpoint_host(host), port))
        except ValueError as exc:
            raise ConfigError(f"{sec.ref}.endpoint_host: {exc}", net_path,
                              sec.line_of("endpoint_host")) from None
        where = f"{net_path}:{sec.line_of('endpoint_host')}: {sec.ref}.endpoint_host"
        hosts = drop_never(hosts, where, notes)
    allowed = tuple(a for item in sec.get_list("allowed_ips") for a in item.split())
    peer = PeerConfig(
        interface=iface, public_key=key, section=sec.ref,
        description=display_text(sec.get("description") or ""),
        endpoint_host=host, endpoint_port=port,
        disabled=_net_bool(sec, "disabled", net_path, notes), keepalive=keepalive,
        allowed_ips=allowed,
        route_allowed_ips=_net_bool(sec, "route_allowed_ips", net_path, notes),
        family=settings.family, probe_timeout=settings.probe_timeout,
        verify_timeout=settings.verify_timeout, probe_address=default_probe_address(allowed),
        hosts=tuple(hosts),
    )
    if over is None:
        return _manage_state(peer, "")
    if over.conflict:
        notes.append(f"{over.conflict}; the peer is left alone")
        return _manage_state(peer, "contradicting overrides")
    peer = _apply_override(peer, over.section, own_path, notes)
    managed = option_value(over.section, _PEER_OPTIONS["managed"], own_path) \
        if "managed" in over.section.options else True
    return _manage_state(peer, "" if managed else "opted out (managed 0)")


def _apply_override(peer: PeerConfig, sec: uci.Section, path: str,
                    notes: list[str]) -> PeerConfig:
    hosts = list(peer.hosts)
    for item in sec.get_list("candidate"):
        for text in item.split():
            try:
                name, port = parse_hostport(text, peer.endpoint_port)
            except ValueError as exc:
                raise ConfigError(f"{sec.ref}.candidate: {exc}", path,
                                  sec.line_of("candidate")) from None
            hosts.append(HostSpec(name, port))
    hosts = drop_never(hosts, f"{path}:{sec.line_of('candidate')}: {sec.ref}.candidate", notes)
    probe_address = peer.probe_address
    if sec.get("probe_address"):
        probe_address = ip_literal(sec.get("probe_address") or "")
        if probe_address is None:
            raise ConfigError(f"{sec.ref}.probe_address: not an IP address", path,
                              sec.line_of("probe_address"))
        notes += probe_outside(probe_address, peer.allowed_ips,
                               f"{path}:{sec.line_of('probe_address')}: {sec.ref}.probe_address")
    changes: dict[str, object] = {}
    for name in ("family", "probe_timeout", "verify_timeout"):
        if name in sec.options:
            changes[name] = option_value(sec, _PEER_OPTIONS[name], path)
    return dataclasses.replace(peer, hosts=tuple(dict.fromkeys(hosts)),
                               probe_address=probe_address, **changes)  # type: ignore[arg-type]


def _manage_state(peer: PeerConfig, opted_out: str) -> PeerConfig:
    reason = opted_out
    if not reason and peer.disabled:
        reason = "disabled in network config"
    elif not reason and not peer.hosts:
        reason = "no usable candidate" if peer.endpoint_host else "passive (no endpoint_host)"
    if reason:
        return dataclasses.replace(peer, managed=False, reason=reason)
    return peer


def build(network: uci.Package, own: uci.Package | None,
          paths: dict[str, str] | None = None) -> Config:
    """Combine both packages. Per-peer faults and warnings become `problems`;
    faults in the daemon's own settings raise ConfigError. `paths` names the file that
    holds an interface's peers when it is not `network.path` (wg-quick: one each)."""
    settings = read_settings(own)
    own_path = own.path if own else ""
    wg_ifaces = [s.name for s in network.sections
                 if s.type == "interface" and s.name and s.get("proto") == "wireguard"]
    for wanted in settings.interfaces:
        if wanted not in wg_ifaces and own is not None:
            sec = own.by_type("globals")[0]
            raise ConfigError(f"{sec.ref}.interface: {wanted!r} is not a wireguard interface "
                              f"in {network.path}{suggest(wanted, wg_ifaces)}", own.path,
                              sec.line_of("interface"))
    managed_ifaces = list(settings.interfaces) or wg_ifaces
    problems: list[str] = own_warnings(own) if own else []
    overrides, bad = overrides_mod.index(own) if own else ({}, [])
    problems += bad
    peers: list[PeerConfig] = []
    seen: set[overrides_mod.Key] = set()
    for iface in wg_ifaces:
        for sec in network.by_type(f"wireguard_{iface}"):
            seen.add((iface, (sec.get("public_key") or "").strip()))
    for iface in managed_ifaces:
        if not is_ifname(iface):
            problems.append(f"{network.path}: interface name {iface!r} is not usable, skipped")
            continue
        for sec in network.by_type(f"wireguard_{iface}"):
            key = (sec.get("public_key") or "").strip()
            notes: list[str] = []
            try:
                peers.append(_read_peer(sec, iface, settings, overrides.get((iface, key)),
                                        (paths or {}).get(iface, network.path), own_path,
                                        notes))
            except ConfigError as exc:
                notes.append(str(exc))
            problems += notes
    problems += overrides_mod.unmatched(overrides, seen, wg_ifaces, managed_ifaces,
                                        own_path)
    groups, bad = groupconf.read(own, peers, settings.failback_hold)
    return Config(settings, tuple(peers), tuple(problems) + tuple(bad), tuple(managed_ifaces),
                  tuple(hostroute_advice.advice(network, peers, settings.host_routes)), groups)


def load(config_dir: str) -> Config:
    """Read `network` (required) and `wg-endpointd` (optional) from a UCI directory.

    A missing `wg-endpointd` means defaults; one that exists but cannot be read
    (a dangling symlink, a loop, no permission, not a regular file) is an error.
    """
    network = uci.load(os.path.join(config_dir, "network"))
    own_path = os.path.join(config_dir, "wg-endpointd")
    own = uci.load(own_path) if os.path.lexists(own_path) else None
    return build(network, own)
