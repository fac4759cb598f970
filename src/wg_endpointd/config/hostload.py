"""The configuration of a Linux host: peers from wg-quick files, settings from the TOML file.

The peers of each WireGuard interface that exists come from DIR/<iface>.conf, the file
name being the interface name as wg-quick has it. They are turned into the sections
/etc/config/network would hold (`config interface` with proto wireguard, `config
wireguard_<iface>`), so that `peers.build` applies the same overrides, groups and checks
as on OpenWrt. Then what wg-quick does on its own is added:
- wg-quick adds no host route for an endpoint (full tunnels use policy routing), so
  `route_allowed_ips` is off and no host-route advice applies;
- a full tunnel (an allowed IP /0, Table unset or auto) gets the interface's fwmark, the
  FwMark given or else 51820 (wireguard-tools src/wg-quick/linux.bash, add_default);
  every packet the daemon sends to a candidate of that interface must carry it;
- a peer whose allowed IPs are only default routes is tested at the first host of the
  interface's Address subnet of that family (10.99.0.1 for 10.99.0.2/24).

An interface without such a file is not managed (an info line); a file wg-quick would
refuse is one problem and its interface is left alone; one that cannot be read is an
error. Only `load` and `conf_names` touch the file system.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from ..core.errors import ConfigError
from ..core.specs import Config, PeerConfig
from ..core.validate import is_ifname, parse_port
from . import peers, tomlfile, uci, wgquick
from .ownfile import read_settings
from .wgquick import QuickFile

WG_QUICK_MARK = 51820  # linux.bash add_default: table and fwmark when FwMark is unset
_CONF_NAME = re.compile(r"[a-zA-Z0-9_=+.-]{1,15}")  # linux.bash parse_options
Files = Mapping[str, QuickFile | str | None]  # per interface: the file, a refusal, or none


def conf_names(wireguard_dir: str) -> list[str]:
    """The interface names of DIR's *.conf files; [] when DIR does not exist."""
    try:
        names = os.listdir(wireguard_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", wireguard_dir) from None
    return sorted(n[:-5] for n in names if n.endswith(".conf") and _CONF_NAME.fullmatch(n[:-5]))


def conf_path(wireguard_dir: str, iface: str) -> str:
    return os.path.join(wireguard_dir, f"{iface}.conf")


def load(wireguard_dir: str, settings_path: str | None, interfaces: Sequence[str]) -> Config:
    """The configuration for the WireGuard `interfaces` that exist (`wg show interfaces`).

    Raises ConfigError when the settings are wrong or a file cannot be read.
    """
    own = None
    if settings_path and os.path.lexists(settings_path):
        own = tomlfile.load(settings_path)
    files: dict[str, QuickFile | str | None] = {}
    for iface in dict.fromkeys(interfaces):
        path = conf_path(wireguard_dir, iface)
        if not os.path.lexists(path):
            files[iface] = None
            continue
        text = uci.read_bytes(path).decode("utf-8", "surrogateescape")
        try:
            files[iface] = wgquick.parse(text, path)
        except ConfigError as exc:
            files[iface] = str(exc)
    return build(wireguard_dir, files, conf_names(wireguard_dir), own)


def _peer_section(iface: str, n: int, peer: wgquick.QuickPeer) -> uci.Section:
    options: dict[str, uci.OptionValue] = {"public_key": peer.public_key,
                                           "route_allowed_ips": "0"}
    lines = {"public_key": peer.line}
    if peer.allowed_ips:
        options["allowed_ips"] = peer.allowed_ips
        lines["allowed_ips"] = peer.lines.get("allowed_ips", peer.line)
    if peer.host is not None:
        options["endpoint_host"], options["endpoint_port"] = peer.host, peer.port
        lines["endpoint_host"] = lines["endpoint_port"] = peer.lines["endpoint"]
    if peer.keepalive:
        options["persistent_keepalive"] = str(peer.keepalive)
    return uci.Section(f"wireguard_{iface}", f"peer{n + 1}", n, peer.line,
                       MappingProxyType(options), MappingProxyType(lines))


def _network(wireguard_dir: str, ifaces: Sequence[str], good: Mapping[str, QuickFile],
             problems: list[str]) -> uci.Package:
    """The sections /etc/config/network would hold for these interfaces and files."""
    sections = [uci.Section("interface", i, n, 0, MappingProxyType(
        {"proto": "wireguard", "nohostroute": "1"})) for n, i in enumerate(ifaces)]
    for iface, quick in good.items():
        for n, peer in enumerate(quick.peers):
            if peer.host is not None:
                try:
                    parse_port(peer.port)
                except ValueError:
                    problems.append(f"{quick.path}:{peer.lines['endpoint']}: Endpoint port "
                                    f"{peer.port!r}: wg-endpointd needs a number 1-65535 "
                                    "there; this peer is left alone")
                    continue
            sections.append(_peer_section(iface, n, peer))
    return uci.Package(wireguard_dir, tuple(sections))


def _without(own: uci.Package, skip: set[str]) -> uci.Package:
    """`own` without the peer and group sections of interfaces left alone."""
    return uci.Package(own.path, tuple(
        s for s in own.sections
        if s.type not in ("peer", "group") or (s.get("interface") or "").strip() not in skip))


def fwmark(quick: QuickFile) -> int:
    """The fwmark WireGuard's own packets carry on this interface once wg-quick is up."""
    full = any(ipaddress.ip_network(a).prefixlen == 0 for p in quick.peers
               for a in p.allowed_ips)
    if full and quick.table in ("", "auto"):  # compared case-sensitively, as linux.bash
        return quick.fwmark or WG_QUICK_MARK
    return quick.fwmark


def address_probe(addresses: Sequence[str], versions: set[int]) -> str | None:
    """The first host of the first Address subnet of one of these IP versions that has
    a host other than this one (the other end of a /31 or /127)."""
    for text in addresses:
        try:
            own = ipaddress.ip_interface(text)
        except ValueError:
            continue  # ip(8) reads forms Python does not; not ours to judge
        net = own.network
        if own.version not in versions or net.num_addresses < 2:
            continue
        first = net[1] if net.num_addresses > 2 or net[0] == own.ip else net[0]
        if first != own.ip:
            return str(first)
    return None


def _finish(peer: PeerConfig, quick: QuickFile, mark: int) -> PeerConfig:
    nets = [ipaddress.ip_network(a) for a in peer.allowed_ips]
    probe = peer.probe_address
    if probe is None and nets and all(n.prefixlen == 0 for n in nets):
        probe = address_probe(quick.addresses, {n.version for n in nets})
    reason = "passive (no Endpoint)" if peer.reason.startswith("passive") else peer.reason
    return dataclasses.replace(peer, fwmark=mark, probe_address=probe, reason=reason)


def build(wireguard_dir: str, files: Files, confs: Sequence[str],
          own: uci.Package | None) -> Config:
    """The configuration from the interfaces that exist (the keys of `files`), the
    names of DIR's *.conf files and the settings; pure."""
    notes: list[str] = []
    problems: list[str] = []
    good = {i: f for i, f in files.items() if isinstance(f, QuickFile)}
    skip = {i for i, f in files.items() if not isinstance(f, QuickFile)}
    skip |= {c for c in confs if c not in files}  # a file whose interface is not up
    for iface, quick in files.items():
        if quick is None:
            notes.append(f"{iface}: not managed: there is no {conf_path(wireguard_dir, iface)}")
        elif isinstance(quick, str):
            problems.append(f"{quick}; {iface} is left alone")
    if not files:
        notes.append("no WireGuard interface is up (`wg show interfaces` lists none)")
    named = set(read_settings(own).interfaces) if own else set()
    named |= {(s.get("interface") or "").strip() for s in own.sections
              if s.type in ("peer", "group")} if own else set()
    for iface in sorted(named & set(confs) - set(files)):
        notes.append(f"{iface}: {conf_path(wireguard_dir, iface)} is there but the interface "
                     "is not up; it is read at the next start or reload")
    ifaces = list(dict.fromkeys([*files, *(c for c in confs if is_ifname(c))]))
    network = _network(wireguard_dir, ifaces, good, problems)
    cfg = peers.build(network, _without(own, skip) if own else None,
                      {i: q.path for i, q in good.items()})
    marks = {i: fwmark(q) for i, q in good.items()}
    done = tuple(_finish(p, good[p.interface], marks[p.interface]) for p in cfg.peers)
    return dataclasses.replace(cfg, peers=done, problems=(*problems, *cfg.problems),
                               interfaces=tuple(i for i in cfg.interfaces if i in files),
                               notes=tuple(notes))
