"""Host routes for the endpoints of full-tunnel peers (design.md §5 "Full tunnels").

When a peer's allowed IPs cover its own endpoint, packets to that endpoint would be
routed into the tunnel itself. The daemon then routes the endpoint through the
uplink with a host route of its own, marked `proto 186`, and removes it when no
managed peer uses that endpoint any more (after a switch, a reload or a stop).

On OpenWrt too the routes are made with `ip`, not with netifd's ubus
`network add_host_route`: netifd (interface-ip.c, interface_ip_add_target_route)
keeps such a route in the uplink interface's host-route list until that interface
goes down and offers no call to remove it, and a route deleted behind its back is
not installed again by a later add_host_route for the same address. Routes marked
186 are invisible to netifd, so its own picture stays right, and routes it made
(proto static, the endpoint host route of wireguard.sh) are never touched here.

The way out is the uplink netifd names (`ubus call network.interface dump`), since a
full tunnel's default route replaces the uplink's in the kernel (openwrt-facts.md §10);
without ubus, the kernel's default routes outside the tunnels. A full tunnel's
candidates get such a route for the length of an ICMP probe too (`probe=True`), so that
no probe goes through the tunnel it judges.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..core import uplinks
from . import proc

log = logging.getLogger(__name__)
PROTO = "186"  # route protocol number that marks the daemon's own routes
Runner = Callable[..., subprocess.CompletedProcess[str]]
PeerId = tuple[str, str]  # (interface, public key)
T = TypeVar("T")


def parse_route_get(text: str) -> tuple[str | None, str | None]:
    """(gateway, device) from `ip route get` or `ip route show` output."""
    words = text.split()
    via = words[words.index("via") + 1] if "via" in words[:-1] else None
    dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    return via, dev


def parse_own_routes(text: str) -> set[str]:
    """Host routes in `ip route show proto 186` output."""
    out = set()
    for line in text.splitlines():
        words = line.split()
        if words and words[0] != "default":
            out.add(words[0].split("/", 1)[0])
    return out


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """One route change at a time: the loop and the repairs beside it share the routes."""
    @functools.wraps(method)
    def call(self: HostRoutes, *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return method(self, *args, **kwargs)
    return call


class HostRoutes:
    """The daemon's endpoint host routes, made and removed with `ip`."""

    def __init__(self, run: Runner = proc.run, timeout: float = 5.0) -> None:
        self._run = run
        self._timeout = timeout
        self.owned: dict[PeerId, set[str]] = {}  # peer -> endpoints it needs routed
        self.adopted: set[str] = set()  # ours from an earlier run, not claimed yet
        self.tunnels: set[str] = set()  # WireGuard interfaces seen: never a way out
        self.probing: dict[PeerId, set[str]] = {}  # routes made for probes only
        self.lock = threading.RLock()  # repairs run side by side (repairs.py)

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return self._run(["ip", *args], timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("`ip %s` failed: %s", " ".join(args[:3]), exc)
            return None

    @_locked
    def adopt(self) -> None:
        """Take over routes that a previous run (killed, say) left behind."""
        for family in ("-4", "-6"):
            res = self._ip(family, "route", "show", "proto", PROTO)
            if res is not None and res.returncode == 0:
                self.adopted |= parse_own_routes(res.stdout)
        if self.adopted:
            log.info("found %d host route(s) of an earlier run; keeping those still needed",
                     len(self.adopted))

    @_locked
    def ensure(self, key: PeerId, iface: str, address: str, probe: bool = False) -> bool:
        """Route `address` outside the tunnel `iface` (checked every time: a route
        goes away with its uplink). True when it is routed outside. `probe`: the route
        is for an ICMP probe only and goes again at `end_probes` unless claimed."""
        mine = self.owned.setdefault(key, set())
        self.tunnels.add(iface)
        got = self._ip("route", "get", address)
        if got is None or got.returncode != 0:
            why = (got.stderr.strip() if got is not None else "") or "no route"
            log.warning("%s: cannot look up the route to %s: %s", iface, address, why)
            return False
        if parse_route_get(got.stdout)[1] not in {iface, *self.tunnels}:
            if address in self.adopted or self._is_ours(address):
                self.adopted.discard(address)
                mine.add(address)  # already routed by us: keep track of it
            return True
        if self._add(iface, address, quiet=probe):
            mine.add(address)
            if probe:
                self.probing.setdefault(key, set()).add(address)
            return True
        return False

    @_locked
    def end_probes(self, key: PeerId, keep: str | None) -> None:
        """Remove the routes made for this peer's probes, except the one for `keep`."""
        mine = self.owned.get(key, set())
        for address in sorted(self.probing.pop(key, set()) - {keep}):
            if address in mine:
                mine.discard(address)
                self._delete(address, quiet=True)

    def _is_ours(self, address: str) -> bool:
        return any(address in s for s in self.owned.values())

    def _netifd(self) -> list[uplinks.Uplink] | None:
        """netifd's uplinks (`ubus call network.interface dump`); None without ubus."""
        try:
            res = self._run(["ubus", "call", "network.interface", "dump"],
                            timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None  # not OpenWrt, or ubusd is not answering: the kernel's tables
        if res.returncode != 0:
            return None
        try:
            return uplinks.parse_netifd_dump(res.stdout)
        except ValueError:
            log.warning("cannot read `ubus call network.interface dump`; using the "
                        "kernel's routes")
            return None

    def path(self, iface: str, address: str) -> uplinks.Path | None:
        """How `address` is reached outside the tunnel `iface`: through the uplink netifd
        names (it knows the gateway even when the tunnel's default route replaced the
        uplink's in the kernel, openwrt-facts.md §10), else the kernel's default routes."""
        avoid = {iface, *self.tunnels}
        found = self._netifd()
        if found is not None:
            way = uplinks.path_to(found, address, avoid)
            if way is not None:
                return way
        version = 6 if ":" in address else 4
        table = self._ip(f"-{version}", "route", "show", "default")
        if table is None or table.returncode != 0:
            return None
        return uplinks.path_to(uplinks.parse_kernel_defaults(table.stdout, version), address,
                               avoid)

    def _add(self, iface: str, address: str, quiet: bool = False) -> bool:
        """Route `address` out through the uplink; `quiet`: a probe's route, logged at
        debug (one per candidate and round would flood a router's log)."""
        way = self.path(iface, address)
        if way is None:
            log.warning("%s: no uplink outside the tunnel for %s (netifd names none that is "
                        "up, and the kernel has no default route outside it); its packets "
                        "would loop into the tunnel", iface, address)
            return False
        family = "-6" if ":" in address else "-4"
        argv = [family, "route", "add", address, "dev", way.device, "proto", PROTO]
        if way.gateway is not None:
            argv[4:4] = ["via", way.gateway]
        res = self._ip(*argv)
        if res is None or res.returncode != 0:
            log.warning("%s: adding a host route for %s failed: %s", iface, address,
                        res.stderr.strip() if res is not None else "ip did not run")
            return False
        log.log(logging.DEBUG if quiet else logging.INFO,
                "%s: host route %s via %s dev %s (uplink %s)", iface, address,
                way.gateway or "(link)", way.device, way.uplink)
        return True

    def _delete(self, address: str, quiet: bool = False) -> None:
        if self._is_ours(address):
            return  # another peer (same server on another tunnel) still needs it
        res = self._ip("route", "del", address, "proto", PROTO)
        if res is None:
            return
        if res.returncode == 0:
            log.log(logging.DEBUG if quiet else logging.INFO, "host route %s removed", address)
        elif "No such process" not in res.stderr:  # gone already: its uplink went down
            log.warning("removing the host route for %s failed: %s", address,
                        res.stderr.strip())

    @_locked
    def retain(self, key: PeerId, keep: str | None) -> None:
        """Remove this peer's routes except the one for `keep` (its endpoint now)."""
        mine = self.owned.get(key, set())
        for address in sorted(mine - {keep}):
            mine.discard(address)
            self._delete(address)

    @_locked
    def prune_adopted(self) -> None:
        """After the first round: routes of an earlier run that no peer claimed go."""
        for address in sorted(self.adopted):
            self._delete(address)
        self.adopted.clear()

    @_locked
    def keep_only(self, peers: set[PeerId]) -> None:
        """Remove the routes of peers that are no longer managed."""
        for key in [k for k in self.owned if k not in peers]:
            self.retain(key, None)
            del self.owned[key]

    @_locked
    def clear(self) -> None:
        for key in list(self.owned):
            self.retain(key, None)
        self.owned.clear()
        self.prune_adopted()
