"""Switch peers to candidates and verify each switch through WireGuard itself.

Every reset is built from the peer as `wg` shows it immediately before, and is
dropped when the peer is gone or its settings changed since the round began:
the user or netifd may edit a peer while a switch is being verified, and the
daemon never writes back a stale picture or re-creates a removed peer.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence

from ..config import PeerConfig
from ..core.allowed import covers_endpoint
from ..core.errors import WgError
from ..core.model import Endpoint, InterfaceDump, PeerDump
from ..core.outcome import Outcome, PeerId, peer_id
from ..core.waits import MIN_WAIT as MIN_WAIT  # re-exported: the shortest verification wait
from ..core.waits import verify_wait
from ..system.wg import Reset
from .job import Job as Job  # re-exported
from .job import RoutesLike as RoutesLike
from .job import WgLike as WgLike
from .job import changed

log = logging.getLogger(__name__)
POLL_MAX = 0.1  # longest pause between two looks at the counters while verifying
NAP_MIN = 0.002  # the shortest pause between two looks (a deadline may fall in between)
QUIET_AFTER = 5  # in a run of many peers, only the first ones' failed tries are logged
BUDGET = 8.0  # a peer's tries in one round end after this (its first wait always ends)


class Verifier:
    def __init__(self, wg: WgLike, clock: Callable[[], float], sleep: Callable[[float], None],
                 poll: float, dumps: Callable[[Sequence[str]], dict[str, InterfaceDump | WgError]],
                 stopping: Callable[[], bool]) -> None:
        self.wg, self.clock, self.sleep, self.poll = wg, clock, sleep, poll
        self.dumps, self.stopping = dumps, stopping
        # repairs run side by side (repairs.py): a reset's look and its `wg set` are one
        # step that no other repair or group move comes between
        self.lock = threading.RLock()
        self.routes: RoutesLike | None = None
        self.rtts: dict[str, float] = {}  # address -> ICMP round trip (ms), from the round
        self.learned: dict[PeerId, float] = {}  # peer -> seconds its last switch took
        self.quiet: set[PeerId] = set()  # peers whose fault is known: tries at debug
        self.no_way_out: set[str] = set()  # full-tunnel candidates no host route could take out

    def wait_for(self, job: Job) -> float:
        """How long a candidate gets: a few times what is known about the path (its ICMP
        round trip, else how long the peer's last verified switch took), never less than
        MIN_WAIT; the full verify_timeout when nothing is known; QUIET_WAIT at most for
        an endpoint never verified on a peer without a session (waits.verify_wait)."""
        return verify_wait(self.rtts.get(job.trying.address),
                           self.learned.get(peer_id(job.peer)), job.peer.verify_timeout,
                           unproven=job.trying == job.unproven)

    def _guarded_reset(self, jobs: Sequence[Job], target: Callable[[Job], Endpoint],
                       what: str) -> list[Job]:
        """Reset each job's peer to `target(job)` if it is still as the round found it.

        Returns the jobs whose reset could not be made (with a result set).
        """
        by_iface: dict[str, list[Job]] = {}
        for job in jobs:
            by_iface.setdefault(job.peer.interface, []).append(job)
        failed: list[Job] = []
        for iface, group in by_iface.items():
            with self.lock:
                failed += self._reset_one(iface, group, target, what)
        return failed

    def _reset_one(self, iface: str, group: Sequence[Job], target: Callable[[Job], Endpoint],
                   what: str) -> list[Job]:
        fresh = self.dumps([iface])[iface]
        if isinstance(fresh, WgError):
            for job in group:
                job.result = Outcome(job.peer, "error", job.original.endpoint, str(fresh))
            return list(group)
        failed: list[Job] = []
        resets: list[Reset] = []
        sent: list[Job] = []
        for job in group:
            now = fresh.peers.get(job.peer.public_key)
            why = changed(job.original, now)
            if why is not None or now is None:
                log.warning("%s: %s during a switch; %s dropped, peer left as it is now",
                            job.peer.label, why, what)
                job.result = Outcome(job.peer, "dropped", now.endpoint if now else None,
                                     f"{why} during the switch; left alone",
                                     before=job.original.endpoint)
                failed.append(job)
                continue
            self.route(job.peer, target(job))
            resets.append(Reset(now, target(job)))
            sent.append(job)
        if resets:
            try:
                self.wg.reset(iface, resets)
            except WgError as exc:
                log.debug("%s: %s failed: %s", iface, what, exc)  # reported with the outcome
                for job in sent:
                    job.result = Outcome(job.peer, "error", job.original.endpoint, str(exc))
                    failed.append(job)
        return failed

    def _start(self, jobs: Sequence[Job]) -> None:
        """Point each job's peer at its current candidate; a job whose reset cannot be
        made gets its result here."""
        self._guarded_reset(jobs, lambda j: j.trying, "switch")
        now = self.clock()
        for job in jobs:
            job.tried_at, job.wait = now, self.wait_for(job)
            job.deadline = now + job.wait

    def route(self, peer: PeerConfig, endpoint: Endpoint) -> None:
        """Full tunnels: keep the endpoint's packets out of the tunnel itself. Not for a
        peer with a fwmark (wg-quick): WireGuard's packets carry it and leave the tunnel
        by wg-quick's rules; no host route is added."""
        if self.routes is not None and not peer.fwmark and covers_endpoint(
                peer, endpoint.address):
            self.routes.ensure(peer_id(peer), peer.interface, endpoint.address)

    def outside(self, peer: PeerConfig, endpoints: Sequence[Endpoint],
                probe: bool = True) -> list[str]:
        """The addresses an ICMP probe reaches without passing through the peer's own
        tunnel: all of a split tunnel's, and all of a peer's with a fwmark (its probes
        carry the mark, which wg-quick's rules send outside the tunnel); another full
        tunnel's only once a host route of the daemon's takes them out through the uplink
        (a probe through the tunnel would reach the server and make a dead path look
        alive)."""
        out = []
        for ep in endpoints:
            if peer.fwmark or not covers_endpoint(peer, ep.address):
                out.append(ep.address)
            elif self.routes is not None:
                if self.routes.ensure(peer_id(peer), peer.interface, ep.address, probe=probe):
                    out.append(ep.address)
                    self.no_way_out.discard(ep.address)
                else:
                    self.no_way_out.add(ep.address)  # its packets would loop into the tunnel
        return out

    def end_probes(self, peers: Sequence[PeerConfig], before: Mapping[PeerId, PeerDump]) -> None:
        """Remove the host routes made only for probes (the endpoint's stays)."""
        if self.routes is None:
            return
        for peer in peers:
            cur = before[peer_id(peer)].endpoint
            self.routes.end_probes(peer_id(peer), cur.address if cur else None)

    def keep_route(self, peer: PeerConfig, endpoint: Endpoint | None) -> None:
        """A peer stays where it is: its route exists (an uplink flap removes it) and
        routes for endpoints it no longer uses go."""
        if self.routes is None:
            return
        if endpoint is not None:
            self.route(peer, endpoint)
        self.routes.retain(peer_id(peer), endpoint.address if endpoint else None)

    def answers(self, peers: Sequence[PeerConfig], before: Mapping[PeerId, PeerDump],
                kicked: set[PeerId], until: Mapping[PeerId, float]) -> dict[PeerId, bool]:
        """A round's liveness wait: which kicked peers showed received bytes or a new
        handshake before their deadline."""
        alive: dict[PeerId, bool] = {}
        waiting = {peer_id(p): p.interface for p in peers if peer_id(p) in kicked}
        delay = self.poll
        while waiting and not self.stopping():
            # no answer can be in yet: nap first; then look, backing off (each look is
            # a `wg` process) but waking for the next deadline rather than overshooting it
            due = min((until[k] for k in waiting if k in until), default=math.inf)
            self.sleep(max(NAP_MIN, min(delay, due - self.clock())))
            delay = min(delay * 1.5, POLL_MAX)
            for iface, dump in self.dumps(sorted(set(waiting.values()))).items():
                if isinstance(dump, WgError):
                    continue
                for key, now in dump.peers.items():
                    ident = (iface, key)
                    old = before.get(ident)
                    if ident in waiting and old is not None and _moved(old, now):
                        alive[ident] = True
                        del waiting[ident]
            now_t = self.clock()
            for ident in [k for k in waiting if now_t >= until.get(k, now_t)]:
                del waiting[ident]
        return alive

    def run(self, jobs: list[Job],
            early: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Try each job's candidates in order until WireGuard shows one working; `early`
        hears each verified peer at once. A peer's tries end at its BUDGET (never before
        its first candidate's wait): the others wait for a later round."""
        begin = self.clock()
        loud = {id(job) for job in jobs[:QUIET_AFTER]}  # the others' failed tries at debug
        for job in jobs:
            job.started = begin
        self._start(jobs)
        restore: list[Job] = []
        delay = self.poll
        while True:
            active = [j for j in jobs if j.result is None]
            if not active:
                break
            # Start fine, then back off (every look is a `wg` process), but wake up for
            # the next deadline rather than overshoot it.
            due = min(j.deadline for j in active) - self.clock()
            self.sleep(max(NAP_MIN, min(delay, due)))
            delay = min(delay * 1.5, POLL_MAX)
            # at a stop, one last look: a verified try is kept, the others put back
            stop = self.stopping()
            dumps = self.dumps([j.peer.interface for j in active])
            advance: list[Job] = []
            for job in active:
                dump = dumps[job.peer.interface]
                now_peer = None if isinstance(dump, WgError) else dump.peers.get(
                    job.peer.public_key)
                if now_peer is not None and (now_peer.latest_handshake > 0
                                             or now_peer.rx_bytes > 0):
                    took = self.clock() - job.started
                    self.learned[peer_id(job.peer)] = self.clock() - job.tried_at
                    ep = now_peer.endpoint or job.trying
                    kept = ep == job.original.endpoint
                    job.result = Outcome(job.peer, "healthy" if kept else "switched", ep,
                                         f"verified in {took:.2f} s; {job.reason}",
                                         before=job.original.endpoint, took=took)
                    if self.routes is not None:  # its part is over: only its route stays
                        self.routes.retain(peer_id(job.peer), ep.address)
                    if early is not None:
                        early(job.result)
                elif stop:  # leave nothing half-done
                    job.result = Outcome(job.peer, "interrupted", job.original.endpoint,
                                         "stopping; original endpoint restored")
                    restore.append(job)
                elif self.clock() >= job.deadline:
                    quiet = peer_id(job.peer) in self.quiet or id(job) not in loud
                    level = logging.DEBUG if quiet else logging.INFO
                    log.log(level, "%s: %s not verified within %.2g s", job.peer.label,
                            job.trying, job.wait)
                    over = self.clock() - job.started >= max(BUDGET, job.peer.verify_timeout)
                    if job.index + 1 < len(job.order) and not over:
                        job.index += 1
                        advance.append(job)
                    else:
                        more = len(job.order) - job.index - 1
                        job.result = Outcome(
                            job.peer, "failed", job.original.endpoint,
                            "no candidate verified; original endpoint restored" + (
                                f" ({more} left for later rounds: the round's "
                                f"{BUDGET:g} s budget is spent)" if more else ""))
                        restore.append(job)
            if stop:
                break
            if advance:
                self._start(advance)
                delay = self.poll
        self._restore(restore)
        if self.routes is not None:
            for job in jobs:
                if job.result is not None and job.result.ok:
                    continue  # retained when it verified
                final = job.result.endpoint if job.result is not None else None
                self.routes.retain(peer_id(job.peer), final.address if final else None)
        return [j.result for j in jobs if j.result is not None]

    def _restore(self, jobs: list[Job]) -> None:
        """Put the original endpoints back, through the same stale-picture check."""
        todo = [j for j in jobs if j.original.endpoint is not None]
        first = {id(j): j.result for j in todo}
        for job in self._guarded_reset(todo, lambda j: j.original.endpoint or j.trying,
                                       "restore"):
            if job.result is not None and job.result.status == "error":
                old = first[id(job)]
                job.result = Outcome(job.peer, "error", None,
                                     f"{old.detail if old else 'switch failed'}; restoring "
                                     f"{job.original.endpoint} failed too")


def _moved(old: PeerDump, new: PeerDump) -> bool:
    """True when WireGuard shows life: more bytes received or a newer handshake."""
    return new.rx_bytes > old.rx_bytes or new.latest_handshake > old.latest_handshake
