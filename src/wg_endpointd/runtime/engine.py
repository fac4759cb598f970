"""One round: observe every managed peer, probe candidates, switch and verify.

All I/O goes through the adapters given to `Engine`, so tests can replace them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from ..config import PeerConfig
from ..core import candidates as cand
from ..core import policy, waits
from ..core.allowed import default_probe_address
from ..core.errors import ProbeSetupError, WgError
from ..core.model import Endpoint, InterfaceDump, PeerDump, ProbeResult
from ..core.outcome import Outcome, PeerId, peer_id
from ..system import net, tunnel
from . import gather
from .verify import Job, RoutesLike, Verifier, WgLike

log = logging.getLogger(__name__)


class ProberLike(Protocol):
    def probe(self, groups: Sequence[Sequence[str]], timeout: float,
              marks: Sequence[int] = ()) -> dict[str, ProbeResult]: ...


Resolver = Callable[[Iterable[str]], Mapping[str, "list[str] | net.ResolveError"]]

__all__ = ["Engine", "Outcome", "PeerId", "peer_id"]


class Engine:
    def __init__(self, wg: WgLike, prober: ProberLike,
                 resolve: Resolver | None = None,
                 route_ok: Callable[[str], bool] = net.route_usable,
                 kick: Callable[[str, str], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 poll: float = 0.02, routes: RoutesLike | None = None,
                 subnets: Callable[[str], list[net.IfAddress]] = net.tunnel_subnets,
                 wall: Callable[[], float] = time.time,
                 iface_rx: Callable[[str], int | None] = net.rx_packets,
                 packets: Callable[[], Mapping[str, tuple[int, int]]] | None = None,
                 answers: Callable[[], tunnel.Answers] | None = None,
                 local: Callable[[], Sequence[net.IfAddress]] | None = None,
                 marked_route: Callable[[str, int], bool] | None = None) -> None:
        self.wg, self.prober = wg, prober
        self.late: dict[str, list[str] | net.ResolveError] = {}  # answers after a round
        self.resolve: Resolver = resolve or (lambda hosts: net.resolve_many(
            hosts, stop=self.stopping, known=self.last_resolved, late=self.late))
        sender = tunnel.TunnelSender(clock)
        self.kick: Callable[[str, str], bool] = kick or sender
        # answers to test datagrams told apart from traffic (tunnel.py); none for a fake
        self.answers: Callable[[], tunnel.Answers] = answers or (
            sender.answers if kick is None else dict)
        self.route_ok, self.subnets, self.wall = route_ok, subnets, wall
        # the route check for packets carrying a fwmark; a test's fake stands for both
        self.marked_route = marked_route or (
            net.route_usable if route_ok is net.route_usable else lambda a, _: route_ok(a))
        # this host's own addresses; none when a test fakes its routes
        self.local = local or (net.local_addresses if route_ok is net.route_usable else list)
        self.iface_rx = iface_rx
        # every interface's (in, out) packets at once; the real counters with the real reader
        self.packets = packets or (net.packet_counters if iface_rx is net.rx_packets else dict)
        self.clock, self.sleep, self.poll = clock, sleep, poll
        self.last_resolved: dict[str, list[str]] = {}
        self.stopping: Callable[[], bool] = lambda: False  # set by the daemon
        self.verifier = Verifier(wg, clock, sleep, poll, self.dumps, lambda: self.stopping())
        self.routes = routes
        self.icmp_problem: str | None = None
        self.remembered: dict[PeerId, Endpoint] = {}  # last verified endpoint (daemon)
        self.turns: dict[PeerId, int] = {}  # where the next round's silent candidates start

    @property
    def routes(self) -> RoutesLike | None:
        return self.verifier.routes

    @routes.setter
    def routes(self, value: RoutesLike | None) -> None:
        self.verifier.routes = value

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

    def candidates(self, peers: Sequence[PeerConfig]) -> dict[PeerId, list[Endpoint]]:
        """Usable candidates per peer, in Happy Eyeballs order (gather.py)."""
        for host, found in list(self.late.items()):  # answers that came after a round
            if not isinstance(found, net.ResolveError):
                self.last_resolved[host] = found
        self.late.clear()
        resolved = self.resolve(h.host for p in peers for h in p.hosts)
        # the host's own addresses: read each round, cheap, and they come and go
        return gather.candidates(peers, resolved, self.last_resolved, self.local(),
                                 self.routed)

    def routed(self, address: str, mark: int = 0) -> bool:
        """A route to `address` for packets carrying `mark` (a peer's fwmark; 0: none)."""
        return self.marked_route(address, mark) if mark else self.route_ok(address)

    def probe_hint(self, groups: list[list[str]], timeout: float,
                   marks: Sequence[int] = ()) -> dict[str, ProbeResult]:
        """ICMP hints for groups of addresses (empty when ICMP is unavailable); group i's
        probes carry the fwmark `marks[i]` (a wg-quick full tunnel's; none when 0).

        A setup fault is logged when it starts and when it ends, not every round.
        """
        try:
            found = self.prober.probe(groups, timeout, marks=marks)
        except ProbeSetupError as exc:
            if self.icmp_problem != str(exc):
                log.warning("%s; ranking without ICMP hints until it works", exc)
                self.icmp_problem = str(exc)
            return {}
        if self.icmp_problem is not None and any(groups):
            log.info("ICMP probing works again")
            self.icmp_problem = None
        return found

    def probe_target(self, peer: PeerConfig, dump: PeerDump) -> str | None:
        """Where a datagram into the tunnel goes: the configured probe address, an
        address in the peer's own allowed IPs, or (full tunnels) the other end of the
        router's own tunnel subnet. None when nothing can be aimed at."""
        found = peer.probe_address or default_probe_address(dump.allowed_ips)
        if found is None:
            found = net.tunnel_gateway(self.subnets(peer.interface))
        return found

    def kick_peer(self, peer: PeerConfig, dump: PeerDump) -> bool:
        """Send one datagram into the tunnel so a live peer answers (design §5)."""
        target = self.probe_target(peer, dump)
        return target is not None and self.kick(peer.interface, target)

    # -- the round ---------------------------------------------------------

    def _recreated(self, before: Mapping[PeerId, PeerDump]) -> dict[PeerId, Endpoint]:
        """Peers that netifd re-created from UCI (no handshake yet, another endpoint than
        the one last verified): their verified endpoint is put back first, at once."""
        out = {}
        for ident, dump in before.items():
            known = self.remembered.get(ident)
            if known is not None and dump.endpoint != known and dump.latest_handshake == 0:
                out[ident] = known
        return out

    def _assess(self, live: Sequence[PeerConfig], before: Mapping[PeerId, PeerDump],
                skip: Iterable[PeerId] = ()
                ) -> tuple[dict[PeerId, list[Endpoint]], dict[str, ProbeResult],
                           dict[PeerId, bool], set[PeerId]]:
        """Candidates, ICMP hints, and which peers WireGuard shows alive (and which
        could be asked at all); peers in `skip` are not asked."""
        start = self.clock()
        kicked = {peer_id(p) for p in live
                  if peer_id(p) not in skip and self.kick_peer(p, before[peer_id(p)])}
        found = self.candidates(live)
        if self.stopping():
            return found, {}, {}, kicked
        wall, learned = self.wall(), self.verifier.learned
        session = {i: waits.has_session(d.handshake_age(wall)) for i, d in before.items()}
        quiet = [waits.liveness_window((), learned.get(peer_id(p)), session[peer_id(p)],
                                       p.probe_timeout) if peer_id(p) in kicked
                 else p.probe_timeout for p in live]  # untested: ranking is all ICMP gives
        timeout = waits.probe_budget(quiet, self.clock() - start,
                                     max((p.probe_timeout for p in live), default=1.0))
        probes = self.probe_hint([self.verifier.outside(p, found[peer_id(p)]) for p in live],
                                 timeout, [p.fwmark for p in live])
        self.verifier.end_probes(live, before)
        for address, probe in probes.items():  # sizes the verification waits
            if probe.rtt_ms is None:
                self.verifier.rtts.pop(address, None)
            else:
                self.verifier.rtts[address] = probe.rtt_ms
        windows = {}
        for p in live:
            ident = peer_id(p)
            log.debug("%s: candidates %s", p.label, ", ".join(
                f"{e} ({gather.rtt_text(probes.get(e.address))})" for e in found[ident]) or "none")
            cur = before[ident].endpoint
            if cur is not None and not self.routed(cur.address, p.fwmark):
                kicked.discard(ident)  # no route: dead now, no need to wait
                log.log(logging.DEBUG if ident in self.verifier.quiet else logging.INFO,
                        "%s: no route to current endpoint %s", p.label, cur)
                continue
            windows[ident] = start + waits.liveness_window(
                waits.sizing_rtts(cur, found[ident], probes), learned.get(ident), session[ident],
                p.probe_timeout)
        return found, probes, self.verifier.answers(live, before, kicked, windows), kicked

    def round(self, peers: Sequence[PeerConfig], dry_run: bool = False,
              leave_idle: bool = False, known_alive: Iterable[PeerId] = (),
              quiet: Iterable[PeerId] = (),
              early: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Check and, where needed, fix every peer; one Outcome per peer.

        `leave_idle`: a scheduled check, with no event and no sign of death: peers whose
        path cannot be tested are then left alone rather than reset to find out.
        `known_alive`: peers the daemon's own checks show alive; not asked again (a peer
        that answers only by keepalive cannot answer within a round's wait). `quiet`:
        peers with a fault the daemon already reported; their tries are logged at debug.
        `early` hears each verified peer as soon as it is.
        """
        self.verifier.quiet = set(quiet)  # a repeating fault is logged by the daemon
        before, outcomes = gather.snapshot(peers, self.dumps(p.interface for p in peers))
        live = [p for p in peers if peer_id(p) in before]
        recreated = self._recreated(before)
        shown = {i for i in known_alive if i in before and i not in recreated}
        found, probes, alive, kicked = self._assess(live, before, {*recreated, *shown})
        alive.update(dict.fromkeys(shown, True))
        kicked |= shown
        jobs: list[Job] = []
        for peer in live:
            ident = peer_id(peer)
            cur, eps = before[ident].endpoint, found[ident]
            # a re-created peer was not tested, but its liveness is no mystery: no
            # session, on an address never verified (waits rule 5)
            decision = policy.decide(cur, alive.get(ident, False), eps, probes,
                                     cand.preferred_family(peer.family),
                                     unknown=ident not in kicked and ident not in recreated)
            if ident in recreated and isinstance(decision, policy.Try):
                decision = policy.reapply(decision, recreated[ident], peer.interface,
                                          probes)
            elif isinstance(decision, policy.Try) and self.probe_target(
                    peer, before[ident]) is None:
                decision = policy.untestable(decision, before[ident].handshake_age(
                    self.wall()), leave_idle)
            if isinstance(decision, policy.Keep):
                status = "healthy" if alive.get(ident, False) else (decision.status or "failed")
                outcomes[ident] = Outcome(peer, status, cur, decision.reason)
                if status == "healthy" and not dry_run:
                    self.verifier.keep_route(peer, cur)
            elif self.stopping():
                outcomes[ident] = Outcome(peer, "interrupted", cur, "stopping; nothing changed")
            elif dry_run:
                outcomes[ident] = Outcome(peer, "would-switch", cur,
                                          f"would try {', '.join(map(str, decision.order))}")
            else:
                full = len(decision.order)
                decision, self.turns[ident] = policy.capped(decision, probes,
                                                            self.turns.get(ident, 0))
                if len(decision.order) < full:
                    log.log(logging.DEBUG if ident in self.verifier.quiet else logging.INFO,
                            "%s: trying %d of %d candidates this round; the others get "
                            "their turn in later rounds", peer.label, len(decision.order), full)
                jobs.append(Job(peer, before[ident], decision.order, decision.reason,
                                unproven=cur if ident in recreated else None))
        def hinted(out: Outcome) -> None:
            if early is not None:
                early(gather.with_hints(out, found.get(peer_id(out.peer), []), probes))

        for out in outcomes.values():  # decided without a try: known before any wait
            hinted(out)
        for out in self.verifier.run(jobs, hinted if early is not None else None):
            outcomes[peer_id(out.peer)] = out
        return [gather.with_hints(outcomes[peer_id(p)], found.get(peer_id(p), []), probes)
                for p in peers]

    def switch(self, peer: PeerConfig, order: Sequence[Endpoint], reason: str) -> Outcome:
        """Try `order` for one peer; restore its endpoint if none verifies."""
        dump = self.dumps([peer.interface])[peer.interface]
        if isinstance(dump, WgError):
            return Outcome(peer, "error", None, str(dump))
        current = dump.peers.get(peer.public_key)
        if current is None:
            return Outcome(peer, "error", None, f"peer {peer.public_key[:8]}… is not on "
                                                f"{peer.interface}")
        [out] = self.verifier.run([Job(peer, current, tuple(order), reason)])
        return out

