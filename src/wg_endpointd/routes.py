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
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

from . import proc

log = logging.getLogger(__name__)
PROTO = "186"  # route protocol number that marks the daemon's own routes
Runner = Callable[..., subprocess.CompletedProcess[str]]
PeerId = tuple[str, str]  # (interface, public key)


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


class HostRoutes:
    """The daemon's endpoint host routes, made and removed with `ip`."""

    def __init__(self, run: Runner = proc.run, timeout: float = 5.0) -> None:
        self._run = run
        self._timeout = timeout
        self.owned: dict[PeerId, set[str]] = {}  # peer -> endpoints it needs routed
        self.adopted: set[str] = set()  # ours from an earlier run, not claimed yet

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return self._run(["ip", *args], timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("`ip %s` failed: %s", " ".join(args[:3]), exc)
            return None

    def adopt(self) -> None:
        """Take over routes that a previous run (killed, say) left behind."""
        for family in ("-4", "-6"):
            res = self._ip(family, "route", "show", "proto", PROTO)
            if res is not None and res.returncode == 0:
                self.adopted |= parse_own_routes(res.stdout)
        if self.adopted:
            log.info("found %d host route(s) of an earlier run; keeping those still needed",
                     len(self.adopted))

    def ensure(self, key: PeerId, iface: str, address: str) -> bool:
        """Route `address` outside the tunnel `iface` (checked every time: a route
        goes away with its uplink). True when it is routed outside."""
        mine = self.owned.setdefault(key, set())
        got = self._ip("route", "get", address)
        if got is None or got.returncode != 0:
            why = (got.stderr.strip() if got is not None else "") or "no route"
            log.warning("%s: cannot look up the route to %s: %s", iface, address, why)
            return False
        if parse_route_get(got.stdout)[1] != iface:
            if address in self.adopted or self._is_ours(address):
                self.adopted.discard(address)
                mine.add(address)  # already routed by us: keep track of it
            return True
        if self._add(iface, address):
            mine.add(address)
            return True
        return False

    def _is_ours(self, address: str) -> bool:
        return any(address in s for s in self.owned.values())

    def _add(self, iface: str, address: str) -> bool:
        family = "-6" if ":" in address else "-4"
        table = self._ip(family, "route", "show", "default")
        uplink = None
        for line in (table.stdout if table is not None else "").splitlines():
            via, dev = parse_route_get(line)
            if dev is not None and dev != iface:
                uplink = (via, dev)
                break
        if uplink is None:
            log.warning("%s: no default route outside the tunnel for %s; its packets "
                        "would loop into the tunnel", iface, address)
            return False
        via, dev = uplink
        argv = [family, "route", "add", address, "dev", dev, "proto", PROTO]
        if via is not None:
            argv[4:4] = ["via", via]
        res = self._ip(*argv)
        if res is None or res.returncode != 0:
            log.warning("%s: adding a host route for %s failed: %s", iface, address,
                        res.stderr.strip() if res is not None else "ip did not run")
            return False
        log.info("%s: host route %s via %s dev %s", iface, address, via or "(link)", dev)
        return True

    def _delete(self, address: str) -> None:
        if self._is_ours(address):
            return  # another peer (same server on another tunnel) still needs it
        res = self._ip("route", "del", address, "proto", PROTO)
        if res is None:
            return
        if res.returncode == 0:
            log.info("host route %s removed", address)
        elif "No such process" not in res.stderr:  # gone already: its uplink went down
            log.warning("removing the host route for %s failed: %s", address,
                        res.stderr.strip())

    def retain(self, key: PeerId, keep: str | None) -> None:
        """Remove this peer's routes except the one for `keep` (its endpoint now)."""
        mine = self.owned.get(key, set())
        for address in sorted(mine - {keep}):
            mine.discard(address)
            self._delete(address)

    def prune_adopted(self) -> None:
        """After the first round: routes of an earlier run that no peer claimed go."""
        for address in sorted(self.adopted):
            self._delete(address)
        self.adopted.clear()

    def keep_only(self, peers: set[PeerId]) -> None:
        """Remove the routes of peers that are no longer managed."""
        for key in [k for k in self.owned if k not in peers]:
            self.retain(key, None)
            del self.owned[key]

    def clear(self) -> None:
        for key in list(self.owned):
            self.retain(key, None)
        self.owned.clear()
        self.prune_adopted()
