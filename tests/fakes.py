"""Fakes for the engine's adapters: a scripted WireGuard, prober, resolver and clock."""

from __future__ import annotations

import dataclasses

from wg_endpointd.core.errors import WgError
from wg_endpointd.core.model import Endpoint, InterfaceDump, PeerDump, ProbeResult
from wg_endpointd.system.net import ResolveError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeWg:
    """Peers answer when their endpoint is in `working`; `kicked` peers with a live path show rx.

    With `keepalive_clock` set, a test datagram is answered the way a peer without an inner
    reply answers: WireGuard's passive keepalive (32 bytes) 10 s after it got the data, and
    only if the path still works then (wireguard-go `timers.go`, kernel `timers.c`:
    KEEPALIVE_TIMEOUT)."""

    def __init__(self, peers: dict[str, dict[str, PeerDump]], working: set[Endpoint]) -> None:
        self.ifaces = peers
        self.working = working
        self.resets: list[tuple[str, list[tuple[str, Endpoint]]]] = []
        self.fail_show: set[str] = set()
        self.shows = 0  # `wg show` processes a real adapter would have run
        self.keepalive_clock: FakeClock | None = None
        self.keepalives: list[tuple[float, str, str]] = []  # due, iface, key
        self.packets: dict[str, int] = {}  # per interface, as /sys/class/net/*/statistics

    def receive(self, iface: str, key: str, packets: int, size: int = 400) -> None:
        """Traffic of the peer's own arrives: its bytes and the interface's packets grow."""
        p = self.ifaces[iface][key]
        self.ifaces[iface][key] = dataclasses.replace(p, rx_bytes=p.rx_bytes + packets * size)
        self.packets[iface] = self.packets.get(iface, 0) + packets

    def rx_packets(self, iface: str) -> int | None:
        """Decrypted packets in on `iface` (wireguard-go: keepalives do not count)."""
        return self.packets.get(iface, 0) if iface in self.ifaces else None

    def _deliver_keepalives(self, now: float) -> None:
        for due, iface, key in [k for k in self.keepalives if k[0] <= now]:
            self.keepalives.remove((due, iface, key))
            p = self.ifaces[iface].get(key)
            if p is not None and p.endpoint in self.working:
                self.ifaces[iface][key] = dataclasses.replace(p, rx_bytes=p.rx_bytes + 32)

    def show(self, iface: str) -> InterfaceDump:
        self.shows += 1
        if self.keepalive_clock is not None:
            self._deliver_keepalives(self.keepalive_clock.now)
        if iface in self.fail_show or iface not in self.ifaces:
            raise WgError(f"`wg show {iface}` failed: No such device")
        peers = {}
        for key, p in self.ifaces[iface].items():
            if p.endpoint in self.working and p.latest_handshake == 0:
                p = dataclasses.replace(p, latest_handshake=1_700_000_000, rx_bytes=p.rx_bytes + 92)
                self.ifaces[iface][key] = p
            peers[key] = p
        return InterfaceDump(iface, 51820, peers)

    def reset(self, iface: str, resets) -> None:
        self.resets.append((iface, [(r.peer.public_key, r.endpoint) for r in resets]))
        for r in resets:
            self.ifaces[iface][r.peer.public_key] = dataclasses.replace(
                r.peer, endpoint=r.endpoint, latest_handshake=0, rx_bytes=0, tx_bytes=0)

    def kick(self, iface: str, address: str) -> bool:
        """A datagram into the tunnel: a live path answers with received bytes."""
        for key, p in self.ifaces.get(iface, {}).items():
            if p.endpoint not in self.working:
                continue
            if self.keepalive_clock is not None:
                self.keepalives.append((self.keepalive_clock.now + 10.0, iface, key))
            else:
                self.ifaces[iface][key] = dataclasses.replace(p, rx_bytes=p.rx_bytes + 64)
                self.packets[iface] = self.packets.get(iface, 0) + 1
        return True


class FakeProber:
    def __init__(self, rtts: dict[str, float]) -> None:
        self.rtts = rtts
        self.calls: list[list[list[str]]] = []
        self.timeouts: list[float] = []
        self.marks: list[list[int]] = []  # each call's fwmark per group

    def probe(self, groups, timeout, marks=()):
        self.calls.append([list(g) for g in groups])
        self.timeouts.append(timeout)
        self.marks.append([marks[i] if i < len(marks) else 0 for i in range(len(groups))])
        return {a: ProbeResult(a, self.rtts.get(a)) for g in groups for a in g}


def resolver(table: dict[str, list[str]]):
    def resolve(hosts):
        return {h: (list(table[h]) if h in table else ResolveError(f"cannot resolve {h}: NXDOMAIN"))
                for h in hosts}
    return resolve


def _show_all(self):
    out = {}
    for iface in self.ifaces:
        if iface not in self.fail_show:
            out[iface] = self.show(iface)
            self.shows -= 1
    self.shows += 1  # one `wg show all dump` process
    return out


FakeWg.show_all = _show_all
