"""wg-quick configuration files (/etc/wireguard/<iface>.conf), read as wg-quick reads them.

Two readers see such a file, and both are followed here (wireguard-tools):
- wg-quick (src/wg-quick/linux.bash, parse_options) cuts each line at its first `#`,
  splits it at the first `=`, trims blanks, and inside `[Interface]` (that header
  exactly, any case) takes its own keys Address, DNS, MTU, Table, PreUp, PostUp,
  PreDown, PostDown and SaveConfig (any case); SaveConfig must be true or false.
  Every other line goes to `wg addconf`.
- `wg` (src/config.c, config_read_line) cuts at `#`, drops every blank character
  (so `Allowed IPs` reads as `AllowedIPs`), knows `[Interface]` and `[Peer]` in any
  case and, by key prefix in any case, ListenPort, FwMark and PrivateKey there,
  PublicKey, PresharedKey, Endpoint, AllowedIPs and PersistentKeepalive in a peer;
  anything else, a key before any section or a key without value is refused, and so
  is a peer without PublicKey.

What the daemon needs is kept (peers, Address, Table, FwMark); private and preshared
keys are checked and dropped, and no message ever shows a key. Pure, except `load()`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.errors import ConfigError
from ..core.options import suggest
from ..core.validate import is_public_key
from .uci import read_bytes

BLANKS = " \t\n\v\f\r"  # wg's char_is_space and bash's [[:space:]] in the C locale
QUICK_KEYS = ("address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown",
              "saveconfig")
INTERFACE_KEYS = {"listenport": "ListenPort", "fwmark": "FwMark", "privatekey": "PrivateKey"}
PEER_KEYS = {"publickey": "PublicKey", "presharedkey": "PresharedKey", "endpoint": "Endpoint",
             "allowedips": "AllowedIPs", "persistentkeepalive": "PersistentKeepalive"}
_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,23}")
_LOOKS_LIKE_KEY = re.compile(r"[A-Za-z0-9+/]{40,}")
_DIGITS = re.compile(r"[0-9]+")
_SERVICE = re.compile(r"[A-Za-z][A-Za-z0-9._+-]*")


@dataclass(frozen=True, slots=True)
class QuickPeer:
    """One peer as `wg` would set it; `lines` maps endpoint, allowed_ips and keepalive
    to the line that set them."""

    line: int  # of its [Peer] header
    public_key: str
    host: str | None = None  # the Endpoint's host, without brackets; None: passive
    port: str = ""  # the Endpoint's port as written (wg also takes a service name)
    allowed_ips: tuple[str, ...] = ()  # normalised, as `wg show` prints them
    keepalive: int | None = None  # None: off or not given
    lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuickFile:
    path: str
    addresses: tuple[str, ...] = ()  # Address entries as written
    table: str = ""  # Table as written ("" when absent)
    fwmark: int = 0  # FwMark (0: off or absent)
    peers: tuple[QuickPeer, ...] = ()


def _shown(text: str) -> str:
    """`text` for a message, unless it could be key material."""
    return "(hidden: it looks like a key)" if _LOOKS_LIKE_KEY.search(text) else repr(text)


def _fwmark(value: str) -> int:
    """config.c parse_fwmark: off, decimal, or 0x hex; at most 0xffffffff."""
    if value.lower() == "off":
        return 0
    if value.startswith("0x") and len(value) > 2 and re.fullmatch(r"[0-9a-fA-F]+", value[2:]):
        mark = int(value[2:], 16)
    elif _DIGITS.fullmatch(value):
        mark = int(value)
    else:
        mark = -1
    if not 0 <= mark <= 0xFFFFFFFF:
        raise ValueError(f"FwMark {_shown(value)} is neither off nor 0-0xffffffff")
    return mark


def _keepalive(value: str) -> int | None:
    """config.c parse_persistent_keepalive: off or 0-65535 (0 is off)."""
    if value.lower() == "off":
        return None
    if not _DIGITS.fullmatch(value) or int(value) > 65535:
        raise ValueError(f"PersistentKeepalive {_shown(value)} is neither off nor 0-65535")
    return int(value) or None


def _endpoint(value: str) -> tuple[str, str]:
    """config.c parse_endpoint: `[host]:port` or `host:port` split at the last colon
    (so an IPv6 literal may go without brackets). The name is resolved later."""
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise ValueError(f"Endpoint {_shown(value)} has no matching ']'")
        host, rest = value[1:close], value[close + 1:]
        if not rest.startswith(":") or len(rest) == 1:
            raise ValueError(f"Endpoint {_shown(value)} has no port")
        port = rest[1:]
    else:
        host, colon, port = value.rpartition(":")
        if not colon or not port:
            raise ValueError(f"Endpoint {_shown(value)} has no port (host:port or [v6]:port)")
    if not host:
        raise ValueError(f"Endpoint {_shown(value)} has no host")
    if not (_DIGITS.fullmatch(port) or _SERVICE.fullmatch(port)):
        raise ValueError(f"Endpoint {_shown(value)}: {port!r} is not a port")
    return host, port


def _allowed(value: str, have: list[str]) -> list[str]:
    """config.c parse_allowedips: comma-separated `ip[/cidr]`, each optionally after
    `+` (add) or `-` (remove); the result added to what earlier lines gave."""
    out = list(have)
    for item in value.split(","):
        remove = item.startswith("-")
        text = item[1:] if item[:1] in ("+", "-") else item
        ip, slash, cidr = text.partition("/")
        try:
            if "%" in ip:
                raise ValueError
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"AllowedIPs: cannot read IP address {_shown(ip)}") from None
        if slash and (not _DIGITS.fullmatch(cidr) or int(cidr) > addr.max_prefixlen):
            raise ValueError(f"AllowedIPs: {_shown(text)} is not ip/cidr")
        prefix = str(ipaddress.ip_network((addr, int(cidr) if slash else addr.max_prefixlen),
                                          strict=False))
        if remove:
            out = [a for a in out if a != prefix]
        elif prefix not in out:
            out.append(prefix)
    return out


@dataclass(slots=True)
class _Draft:  # a peer while its lines are read
    line: int
    key: str = ""
    host: str | None = None
    port: str = ""
    allowed: list[str] = field(default_factory=list)
    keepalive: int | None = None
    lines: dict[str, int] = field(default_factory=dict)


def _quick_line(key: str, value: str, acc: dict[str, list[str]]) -> None:
    """One of wg-quick's own keys; raise ValueError where wg-quick dies."""
    name = key.lower()
    if name == "address":
        acc["address"] += value.replace(",", " ").split()
    elif name == "table":
        acc["table"] = [value]
    elif name == "saveconfig" and value.lower() not in ("true", "false"):
        raise ValueError(f"SaveConfig {_shown(value)} is neither true nor false")


def _wg_line(line: str, section: str, peers: list[_Draft], no: int,
             device: dict[str, int]) -> None:
    """One line as `wg addconf` reads it (blanks already gone); raise ValueError."""
    name, eq, value = line.partition("=")
    known = INTERFACE_KEYS if section == "interface" else PEER_KEYS if section else {}
    spelled = known.get(name.lower())
    if spelled is None:
        shown = name if _KEY_NAME.fullmatch(name) else ""
        if not eq and line.startswith("["):
            raise ValueError(f"unknown section {_shown(line)} (wg knows [Interface] and [Peer])")
        if not shown:
            raise ValueError("not a section header or a Key = value line")
        if not section:
            raise ValueError(f"{shown} before any [Interface] or [Peer] section")
        other = PEER_KEYS if section == "interface" else INTERFACE_KEYS
        if name.lower() in other:
            where = "a [Peer]" if section == "interface" else "[Interface]"
            raise ValueError(f"{other[name.lower()]} belongs in {where} section")
        if section == "peer" and name.lower() in QUICK_KEYS:
            raise ValueError(f"{shown} belongs in [Interface] (wg-quick reads it there only)")
        head = "[Interface]" if section == "interface" else "[Peer]"
        raise ValueError(f"{shown} is not a key of {head}"
                         f"{suggest(name, list(known.values()))}")
    if not value:
        raise ValueError(f"{spelled} has no value")
    if spelled in ("PrivateKey", "PresharedKey", "PublicKey") and not is_public_key(value):
        raise ValueError(f"{spelled} is not a key (44 base64 characters ending in '=')")
    if spelled == "FwMark":
        device["fwmark"] = _fwmark(value)
    elif spelled == "ListenPort" and not (_DIGITS.fullmatch(value)
                                          or _SERVICE.fullmatch(value)):
        raise ValueError(f"ListenPort {_shown(value)} is not a port")
    if section != "peer":
        return
    peer = peers[-1]
    if spelled == "PublicKey":
        peer.key = value
    elif spelled == "Endpoint":
        peer.host, peer.port = _endpoint(value)
        peer.lines["endpoint"] = no
    elif spelled == "AllowedIPs":
        peer.allowed = _allowed(value, peer.allowed)
        peer.lines.setdefault("allowed_ips", no)
    elif spelled == "PersistentKeepalive":
        peer.keepalive = _keepalive(value)
        peer.lines["keepalive"] = no


def _merge(drafts: list[_Draft]) -> tuple[QuickPeer, ...]:
    """Peers by key: a later [Peer] with the same key updates the first (it replaces
    its allowed IPs, as each [Peer] asks the kernel to, and sets what it gives)."""
    peers: dict[str, QuickPeer] = {}
    for d in drafts:
        old = peers.get(d.key)
        if old is None:
            peers[d.key] = QuickPeer(d.line, d.key, d.host, d.port, tuple(d.allowed),
                                     d.keepalive, MappingProxyType(dict(d.lines)))
            continue
        lines = {**old.lines, **d.lines}
        if "allowed_ips" not in d.lines:
            lines.pop("allowed_ips", None)
        peers[d.key] = QuickPeer(
            old.line, d.key, d.host if "endpoint" in d.lines else old.host,
            d.port if "endpoint" in d.lines else old.port, tuple(d.allowed),
            d.keepalive if "keepalive" in d.lines else old.keepalive, MappingProxyType(lines))
    return tuple(peers.values())


def parse(text: str, path: str = "<string>") -> QuickFile:
    """Read a wg-quick file; raise ConfigError naming `path` and the line for anything
    wg-quick or `wg` would refuse."""
    acc: dict[str, list[str]] = {"address": [], "table": [""]}
    device = {"fwmark": 0}
    drafts: list[_Draft] = []
    quick_iface, section = False, ""
    lines = text.replace("\x00", "").split("\n")  # bash's `read` drops NUL bytes
    if lines and lines[-1] == "":
        lines.pop()
    for no, raw in enumerate(lines, 1):
        stripped = raw.split("#", 1)[0]
        key, eq, rest = stripped.partition("=")
        key = key.strip(BLANKS)
        value = (rest if eq else stripped).strip(BLANKS)
        try:
            if key.startswith("["):
                quick_iface = key.lower() == "[interface]"
            if quick_iface and key.lower() in QUICK_KEYS:
                _quick_line(key, value, acc)
                continue
            line = "".join(c for c in stripped if c not in BLANKS)
            if not line:
                continue
            if line.lower() in ("[interface]", "[peer]"):
                section = line[1:-1].lower()
                if section == "peer":
                    drafts.append(_Draft(no))
                continue
            _wg_line(line, section, drafts, no, device)
        except ValueError as exc:
            raise ConfigError(str(exc), path, no) from None
    for d in drafts:
        if not d.key:
            raise ConfigError("[Peer] without PublicKey", path, d.line)
    return QuickFile(path, tuple(acc["address"]), acc["table"][-1], device["fwmark"],
                     _merge(drafts))


def load(path: str) -> QuickFile:
    """Read and parse a wg-quick file; ConfigError when it cannot be read or is refused."""
    return parse(read_bytes(path).decode("utf-8", "surrogateescape"), path)
