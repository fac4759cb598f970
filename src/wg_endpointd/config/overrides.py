"""Per-peer overrides (`config peer` in /etc/config/wg-endpointd), matched by
(interface, public_key). Sections for the same peer merge unless they contradict;
a section that matches no peer is reported with its likely cause. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ..core.options import PEER, suggest
from . import uci

Key = tuple[str, str]  # (interface, public key)
_LISTS = {o.name for o in PEER if o.kind == "names"}


@dataclass(frozen=True, slots=True)
class Override:
    section: uci.Section  # all sections for this peer, merged
    conflict: str = ""  # set when two of them contradict each other


def index(own: uci.Package) -> tuple[dict[Key, Override], list[str]]:
    """The overrides by (interface, key), and one line for each unusable section."""
    groups: dict[Key, list[uci.Section]] = {}
    problems = []
    for sec in own.by_type("peer"):
        iface, key = sec.get("interface") or "", sec.get("public_key") or ""
        if not iface or not key:
            problems.append(f"{own.path}:{sec.line}: {sec.ref}: a peer override needs both "
                            "interface and public_key; it does nothing")
            continue
        groups.setdefault((iface, key), []).append(sec)
    return {k: _merge(secs, own.path) for k, secs in groups.items()}, problems


def _merge(secs: list[uci.Section], path: str) -> Override:
    first = secs[0]
    if len(secs) == 1:
        return Override(first)
    options: dict[str, uci.OptionValue] = dict(first.options)
    lines = {name: first.line_of(name) for name in options}
    owner = {name: first for name in options}
    for sec in secs[1:]:
        for name, value in sec.options.items():
            if name in _LISTS and name in options:  # candidates add up
                options[name] = (*first.get_list(name), *sec.get_list(name))
            elif name in options and options[name] != value:
                was = owner[name]
                return Override(first, f"{path}:{sec.line_of(name)}: {sec.ref}.{name} "
                                f"contradicts {was.ref}.{name} (line {lines[name]})")
            options.setdefault(name, value)
            lines.setdefault(name, sec.line_of(name))
            owner.setdefault(name, sec)
    merged = uci.Section(first.type, first.name, first.index, first.line,
                         MappingProxyType(options), MappingProxyType(lines))
    return Override(merged)


def unmatched(overrides: dict[Key, Override], seen: set[Key], wg_ifaces: list[str],
              managed_ifaces: list[str], path: str) -> list[str]:
    """One line for each override that matches no managed peer, with the likely cause.

    `seen` holds every (interface, key) of the network file's wireguard interfaces.
    """
    out = []
    for (iface, key), ov in overrides.items():
        if (iface, key) in seen and iface in managed_ifaces:
            continue
        others = sorted(i for i, k in seen if k == key.strip())
        if key != key.strip() and others:
            why = "its public_key has blanks around it"
        elif iface not in wg_ifaces:
            why = f"there is no wireguard interface {iface!r}{suggest(iface, wg_ifaces)}"
        elif iface not in managed_ifaces:
            why = f"interface {iface!r} is not in the globals' list interface"
        elif others:
            why = f"that public_key is a peer of {others[0]!r}, not of {iface!r}"
        else:
            keys = [k for i, k in seen if i == iface]
            why = f"no peer of {iface!r} has that public_key{suggest(key, keys)}"
        out.append(f"{path}:{ov.section.line}: {ov.section.ref}: matches no peer ({why}); "
                   "it does nothing")
    return out
