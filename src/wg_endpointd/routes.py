"""Host routes for new endpoints of full-tunnel peers (design.md §5 "Full tunnels").

When a peer's allowed IPs cover its own endpoint, packets to a new endpoint
would be routed into the tunnel itself. After a switch the new endpoint gets a
host route through the uplink; routes the daemon added earlier are removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable

from . import proc

log = logging.getLogger(__name__)
PROTO = "186"  # route protocol number that marks the daemon's own routes
Runner = Callable[..., subprocess.CompletedProcess[str]]
PeerId = tuple[str, str]  # (interface, public key)


def parse_route_get(text: str) -> tuple[str | None, str | None]:
    """(gateway, device) from `ip route get` output."""
    words = text.split()
    via = words[words.index("via") + 1] if "via" in words[:-1] else None
    dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    return via, dev


class HostRoutes:
    """Adds and removes the daemon's endpoint host routes with `ip` (or netifd's ubus)."""

    def __init__(self, run: Runner = proc.run, use_ubus: bool | None = None,
                 timeout: float = 5.0) -> None:
        self._run = run
        self._timeout = timeout
        self._ubus = (shutil.which("ubus") is not None and os.path.exists("/var/run/ubus")
                      ) if use_ubus is None else use_ubus
        self.owned: dict[PeerId, set[str]] = {}  # peer -> addresses with our host route

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return self._run(["ip", *args], timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("ip %s failed: %s", " ".join(args[:2]), exc)
            return None

    def ensure(self, key: PeerId, iface: str, address: str) -> None:
        """Route `address` outside the tunnel `iface` before WireGuard is pointed at it."""
        mine = self.owned.setdefault(key, set())
        if address in mine:
            return
        if self._ubus:
            self._add_ubus(iface, address)
            mine.add(address)
        elif self._add_ip(iface, address):
            mine.add(address)

    def retain(self, key: PeerId, keep: str | None) -> None:
        """Remove this peer's routes except the one for `keep` (its endpoint now)."""
        mine = self.owned.get(key, set())
        for address in sorted(mine - {keep}):
            self._ip("route", "del", address, "proto", PROTO)
            mine.discard(address)

    def _add_ubus(self, iface: str, address: str) -> None:
        args = json.dumps({"target": address, "v6": ":" in address,
                           "interface": iface, "exclude": True})
        try:
            self._run(["ubus", "call", "network", "add_host_route", args],
                      timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("ubus add_host_route %s failed: %s", address, exc)

    def _add_ip(self, iface: str, new: str) -> bool:
        """Add a host route when `new` would be routed into `iface`; True if one was added."""
        got = self._ip("route", "get", new)
        if got is None or got.returncode != 0:
            return False
        if parse_route_get(got.stdout)[1] != iface:
            return False  # already routed outside the tunnel
        family = "-6" if ":" in new else "-4"
        table = self._ip(family, "route", "show", "default")
        uplink = None
        for line in (table.stdout if table is not None else "").splitlines():
            via, dev = parse_route_get(line)
            if dev is not None and dev != iface:
                uplink = (via, dev)
                break
        if uplink is None:
            log.warning("no uplink default route outside %s for %s", iface, new)
            return False
        via, dev = uplink
        argv = [family, "route", "replace", new, "dev", dev, "proto", PROTO]
        if via is not None:
            argv[4:4] = ["via", via]
        res = self._ip(*argv)
        if res is None or res.returncode != 0:
            return False
        log.info("host route %s via %s dev %s", new, via or "(link)", dev)
        return True

    def keep_only(self, peers: set[PeerId]) -> None:
        """Remove the routes of peers that are no longer managed."""
        for key in [k for k in self.owned if k not in peers]:
            self.retain(key, None)
            del self.owned[key]

    def clear(self) -> None:
        for key in list(self.owned):
            self.retain(key, None)
        self.owned.clear()
