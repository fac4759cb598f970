"""One round: observe every managed peer, probe candidates, switch and verify.

All I/O goes through the adapters given to `Engine`, so tests can replace them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from . import candidates as cand
from . import net, policy
from .config import PeerConfig, covers_endpoint, default_probe_address
from .errors import ProbeSetupError, WgError
from .model import Endpoint, InterfaceDump, PeerDump, ProbeResult
from .wg import Reset

log = logging.getLogger(__name__)


class WgLike(Protocol):
    def show(self, iface: str) -> InterfaceDump: ...
    def show_all(self) -> dict[str, InterfaceDump]: ...
    def reset(self, iface: str, resets: Sequence[Reset]) -> None: ...


class ProberLike(Protocol):
    def probe(self, groups: Sequence[Sequence[str]], timeout: float) -> dict[str, ProbeResult]: ...


class RoutesLike(Protocol):
    def ensure(self, key: str, iface: str, address: str) -> None: ...
    def retain(self, key: str, keep: str | None) -> None: ...


Resolver = Callable[[Iterable[str]], Mapping[str, "list[str] | net.ResolveError"]]


@dataclass(frozen=True, slots=True)
class Outcome:
    peer: PeerConfig
    status: str  # healthy | switched | failed | error | would-switch
    endpoint: Endpoint | None
    detail: str
    candidates: tuple[Endpoint, ...] = ()
    probes: Mapping[str, ProbeResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("healthy", "switched")


@dataclass(slots=True)
class _Job:
    """Verification of one peer, candidate after candidate."""

    peer: PeerConfig
    original: PeerDump
    order: tuple[Endpoint, ...]
    reason: str
    index: int = 0
    deadline: float = 0.0
    started: float = 0.0
    result: Outcome | None = None

    @property
    def trying(self) -> Endpoint:
        return self.order[self.index]


class Engine:
    def __init__(self, wg: WgLike, prober: ProberLike,
                 resolve: Resolver = net.resolve_many,
                 route_ok: Callable[[str], bool] = net.route_usable,
                 kick: Callable[[str, str], bool] = net.send_into_tunnel,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 poll: float = 0.02, routes: RoutesLike | None = None) -> None:
        self.wg, self.prober, self.resolve = wg, prober, resolve
        self.route_ok, self.kick = route_ok, kick
        self.clock, self.sleep, self.poll = clock, sleep, poll
        self.last_resolved: dict[str, list[str]] = {}
        self.routes = routes
        self.stopping: Callable[[], bool] = lambda: False  # set by the daemon

    # -- observation -------------------------------------------------------

    def dumps(self, ifaces: Iterable[str]) -> dict[str, InterfaceDump | WgError]:
        """One `wg show` per interface, or a single `wg show all` for several."""
        out: dict[str, InterfaceDump | WgError] = {}
        wanted = list(dict.fromkeys(ifaces))
        if len(wanted) > 1:
            try:
                every = self.wg.show_all()
            except WgError:
                every = {}
            out.update({i: every[i] for i in wanted if i in every})
        for iface in wanted:
            if iface in out:
                continue
            try:
                out[iface] = self.wg.show(iface)
            except WgError as exc:
                out[iface] = exc
        return out


    def candidates(self, peers: Sequence[PeerConfig]) -> dict[str, list[Endpoint]]:
        """Usable candidates per peer key, in Happy Eyeballs order."""
        resolved = self.resolve(h.host for p in peers for h in p.hosts)
        usable: dict[str, bool] = {}
        out: dict[str, list[Endpoint]] = {}
        for peer in peers:
            eps: list[Endpoint] = []
            for spec in peer.hosts:
                found = resolved.get(spec.host, [])
                if isinstance(found, net.ResolveError):
                    found = self.last_resolved.get(spec.host, [])
                    log.warning("%s: %s; %s", peer.label, resolved[spec.host],
                                "using last known addresses" if found else "no candidates")
                else:
                    self.last_resolved[spec.host] = found
                eps += [Endpoint(a, spec.port) for a in found]
            eps = cand.clean(eps)
            for ep in eps:
                if ep.address not in usable:
                    usable[ep.address] = self.route_ok(ep.address)
                    if not usable[ep.address]:
                        log.debug("no route from this host to %s, skipped", ep.address)
            eps = [e for e in eps if usable[e.address]]
            out[peer.public_key] = cand.interleave(eps, cand.preferred_family(peer.family))
        return out

    def probe_hint(self, groups: list[list[str]], timeout: float) -> dict[str, ProbeResult]:
        """ICMP hints for groups of addresses (empty when ICMP is unavailable)."""
        try:
            return self.prober.probe(groups, timeout)
        except ProbeSetupError as exc:
            log.warning("%s; ranking without ICMP hints", exc)
            return {}

    def _liveness(self, peers: Sequence[PeerConfig], before: Mapping[str, PeerDump],
                  kicked: set[str], until: Mapping[str, float]) -> dict[str, bool]:
        """Which kicked peers showed received bytes or a new handshake before their deadline."""
        alive: dict[str, bool] = {}
        waiting = {p.public_key: p.interface for p in peers if p.public_key in kicked}
        while waiting:
            for dump in self.dumps(set(waiting.values())).values():
                if isinstance(dump, WgError):
                    continue
                for key, now in dump.peers.items():
                    old = before.get(key)
                    if key in waiting and old is not None and _moved(old, now):
                        alive[key] = True
                        del waiting[key]
            now_t = self.clock()
            for key in [k for k in waiting if now_t >= until.get(k, now_t)]:
                del waiting[key]
            if waiting:
                self.sleep(self.poll)
        return alive

    def kick_peer(self, peer: PeerConfig, dump: PeerDump) -> bool:
        """Send one datagram into the tunnel so a live peer answers (design §5)."""
        target = peer.probe_address or default_probe_address(dump.allowed_ips)
        return target is not None and self.kick(peer.interface, target)

    # -- the round ---------------------------------------------------------

    def _snapshot(self, peers: Sequence[PeerConfig]
                  ) -> tuple[dict[str, PeerDump], dict[str, Outcome]]:
        """Each peer's current WireGuard state, or an error outcome for it."""
        dumps = self.dumps(p.interface for p in peers)
        before: dict[str, PeerDump] = {}
        errors: dict[str, Outcome] = {}
        for peer in peers:
            dump = dumps[peer.interface]
            if isinstance(dump, WgError):
                errors[peer.public_key] = Outcome(peer, "error", None, str(dump))
            elif peer.public_key not in dump.peers:
                errors[peer.public_key] = Outcome(
                    peer, "error", None, f"peer {peer.public_key[:8]}… is not on {peer.interface}")
            else:
                before[peer.public_key] = dump.peers[peer.public_key]
        return before, errors

    def _assess(self, live: Sequence[PeerConfig], before: Mapping[str, PeerDump]
                ) -> tuple[dict[str, list[Endpoint]], dict[str, ProbeResult], dict[str, bool],
                           set[str]]:
        """Candidates, ICMP hints, and which peers WireGuard shows alive (and which
        could be asked at all)."""
        start = self.clock()
        kicked = {p.public_key for p in live if self.kick_peer(p, before[p.public_key])}
        found = self.candidates(live)
        timeout = max((p.probe_timeout for p in live), default=1.0)
        probes = self.probe_hint([[e.address for e in found[p.public_key]] for p in live], timeout)
        windows = {}
        for p in live:
            log.debug("%s: candidates %s", p.label, ", ".join(
                f"{e} ({_rtt_text(probes.get(e.address))})" for e in found[p.public_key]) or "none")
            cur = before[p.public_key].endpoint
            if cur is not None and not self.route_ok(cur.address):
                kicked.discard(p.public_key)  # no route: dead now, no need to wait
                log.info("%s: no route to current endpoint %s", p.label, cur)
                continue
            windows[p.public_key] = start + liveness_window(
                [probes[e.address] for e in found[p.public_key] if e.address in probes],
                p.probe_timeout)
        return found, probes, self._liveness(live, before, kicked, windows), kicked

    def round(self, peers: Sequence[PeerConfig], dry_run: bool = False) -> list[Outcome]:
        """Check and, where needed, fix every peer; one Outcome per peer."""
        before, outcomes = self._snapshot(peers)
        live = [p for p in peers if p.public_key in before]
        found, probes, alive, kicked = self._assess(live, before)
        jobs: list[_Job] = []
        for peer in live:
            key = peer.public_key
            cur, eps = before[key].endpoint, found[key]
            decision = policy.decide(cur, alive.get(key, False), eps, probes,
                                     cand.preferred_family(peer.family),
                                     unknown=key not in kicked)
            if isinstance(decision, policy.Keep):
                status = "healthy" if alive.get(key, False) else "failed"
                outcomes[key] = Outcome(peer, status, cur, decision.reason)
            elif dry_run:
                outcomes[key] = Outcome(peer, "would-switch", cur,
                                        f"would try {', '.join(map(str, decision.order))}")
            else:
                jobs.append(_Job(peer, before[key], decision.order, decision.reason))
        for out in self._verify(jobs):
            outcomes[out.peer.public_key] = out
        return [_with_hints(outcomes[p.public_key], found.get(p.public_key, []), probes)
                for p in peers]

    # -- verification ------------------------------------------------------

    def _start(self, jobs: Sequence[_Job]) -> None:
        by_iface: dict[str, list[_Job]] = {}
        for job in jobs:
            by_iface.setdefault(job.peer.interface, []).append(job)
        for iface, group in by_iface.items():
            for job in group:
                self._route(job.peer, job.trying)
            now = self.clock()
            for job in group:
                job.deadline = now + job.peer.verify_timeout
            try:
                self.wg.reset(iface, [Reset(j.original, j.trying) for j in group])
            except WgError as exc:
                for job in group:
                    job.result = Outcome(job.peer, "error", job.original.endpoint, str(exc))

    def switch(self, peer: PeerConfig, order: Sequence[Endpoint], reason: str) -> Outcome:
        """Try `order` for one peer; restore its endpoint if none verifies."""
        dump = self.dumps([peer.interface])[peer.interface]
        if isinstance(dump, WgError):
            return Outcome(peer, "error", None, str(dump))
        current = dump.peers.get(peer.public_key)
        if current is None:
            return Outcome(peer, "error", None, f"peer {peer.public_key[:8]}… is not on "
                                                f"{peer.interface}")
        [out] = self._verify([_Job(peer, current, tuple(order), reason)])
        return out

    def _route(self, peer: PeerConfig, endpoint: Endpoint) -> None:
        """Full tunnels: keep the endpoint's packets out of the tunnel itself."""
        if self.routes is not None and covers_endpoint(peer, endpoint.address):
            self.routes.ensure(peer.public_key, peer.interface, endpoint.address)

    def _verify(self, jobs: list[_Job]) -> list[Outcome]:
        """Try each job's candidates in order until WireGuard shows one working."""
        begin = self.clock()
        for job in jobs:
            job.started = begin
        self._start(jobs)
        restore: list[_Job] = []
        while True:
            active = [j for j in jobs if j.result is None]
            if not active:
                break
            self.sleep(self.poll)
            dumps = self.dumps(j.peer.interface for j in active)
            advance: list[_Job] = []
            if self.stopping():  # leave nothing half-done: put the old endpoints back
                for job in active:
                    job.result = Outcome(job.peer, "failed", job.original.endpoint,
                                         "interrupted; original endpoint restored")
                    restore.append(job)
                break
            for job in active:
                dump = dumps[job.peer.interface]
                now_peer = None if isinstance(dump, WgError) else dump.peers.get(
                    job.peer.public_key)
                if now_peer is not None and (now_peer.latest_handshake > 0
                                             or now_peer.rx_bytes > 0):
                    took = self.clock() - job.started
                    ep = now_peer.endpoint or job.trying
                    kept = ep == job.original.endpoint
                    job.result = Outcome(job.peer, "healthy" if kept else "switched", ep,
                                         f"verified in {took:.2f} s; {job.reason}")
                elif self.clock() >= job.deadline:
                    log.info("%s: %s not verified within %g s", job.peer.label, job.trying,
                             job.peer.verify_timeout)
                    if job.index + 1 < len(job.order):
                        job.index += 1
                        advance.append(job)
                    else:
                        job.result = Outcome(job.peer, "failed", job.original.endpoint,
                                             "no candidate verified; original endpoint restored")
                        restore.append(job)
            self._start(advance)
        by_iface: dict[str, list[Reset]] = {}
        for job in restore:
            if job.original.endpoint is not None:
                self._route(job.peer, job.original.endpoint)
                by_iface.setdefault(job.peer.interface, []).append(
                    Reset(job.original, job.original.endpoint))
        for iface, resets in by_iface.items():
            try:
                self.wg.reset(iface, resets)
            except WgError as exc:
                log.error("%s: cannot restore endpoints: %s", iface, exc)
        if self.routes is not None:
            for job in jobs:
                final = job.result.endpoint if job.result is not None else None
                self.routes.retain(job.peer.public_key, final.address if final else None)
        return [j.result for j in jobs if j.result is not None]


def _with_hints(out: Outcome, eps: Sequence[Endpoint],
                probes: Mapping[str, ProbeResult]) -> Outcome:
    """Attach the peer's candidates and their ICMP results (for state and status)."""
    seen = {e.address: probes[e.address] for e in eps if e.address in probes}
    return dataclasses.replace(out, candidates=tuple(eps), probes=seen)


def _rtt_text(probe: ProbeResult | None) -> str:
    if probe is None or probe.rtt_ms is None:
        return "no ping reply"
    return f"{probe.rtt_ms:.1f} ms"


def liveness_window(probes: Sequence[ProbeResult], ceiling: float) -> float:
    """How long to wait for a tunnel answer: a few round trips of the fastest
    ICMP answer among the peer's addresses, else the probe timeout."""
    rtts = [p.rtt_ms for p in probes if p.rtt_ms is not None]
    if not rtts:
        return ceiling
    return min(ceiling, max(0.2, 4 * min(rtts) / 1000 + 0.1))


def _moved(old: PeerDump, new: PeerDump) -> bool:
    """True when WireGuard shows life: more bytes received or a newer handshake."""
    return new.rx_bytes > old.rx_bytes or new.latest_handshake > old.latest_handshake
