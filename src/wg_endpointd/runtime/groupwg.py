"""Standby groups at the `wg` level: read members, move allowed IPs, check traffic.

Each move is computed from the members as `wg` shows them just before it, so a
member's own allowed IPs stay as the user or netifd left them, and a member
that is gone is never re-created (`wg set … peer KEY allowed-ips` would add it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from ..config import PeerConfig
from ..config.groupconf import GroupConfig
from ..core import candidates as cand
from ..core import groups as gp
from ..core import policy
from ..core import state as st
from ..core.allowed import covers_endpoint
from ..core.errors import WgError
from ..core.model import PeerDump
from ..core.outcome import Outcome, PeerId, peer_id
from .engine import Engine
from .verify import Job

log = logging.getLogger(__name__)


class AllowedIpsLike(Protocol):
    def set_allowed_ips(self, iface: str,
                        changes: Sequence[tuple[str, Sequence[str]]]) -> None: ...


class GroupWg:
    """The group's `wg` operations, through the engine's adapters."""

    def __init__(self, engine: Engine, wg: AllowedIpsLike,
                 peers: Callable[[], Mapping[PeerId, PeerConfig]],
                 peer_state: Callable[[PeerConfig], st.PeerState]) -> None:
        self.engine, self.wg, self.peers, self.peer_state = engine, wg, peers, peer_state

    def name(self, group: GroupConfig, key: str | None) -> str:
        peer = self.peers().get((group.interface, key or ""))
        return peer.name if peer else (key or "(none)")[:8]

    def members(self, group: GroupConfig) -> dict[str, PeerDump] | str:
        dump = self.engine.dumps([group.interface])[group.interface]
        if isinstance(dump, WgError):
            return str(dump)
        for key in group.members:
            if key not in dump.peers:
                return f"member {key[:8]}… is not on {group.interface}"
        return {k: dump.peers[k] for k in group.members}

    def enforce(self, group: GroupConfig, active: str, announce: bool = False) -> str | None:
        """Leave the group's allowed IPs on `active` alone with one `wg set`; None when
        that is how things are now, else why it could not be done. `announce` logs a
        re-application (netifd put the allowed IPs back where UCI says). No repair's
        reset of a member comes between the look and the move."""
        with self.engine.verifier.lock:
            return self._enforce(group, active, announce)

    def _enforce(self, group: GroupConfig, active: str, announce: bool) -> str | None:
        fresh = self.members(group)
        if isinstance(fresh, str):
            return fresh
        have = {k: d.allowed_ips for k, d in fresh.items()}
        changes = gp.plan(group, active, have)
        if not changes:
            return None
        if announce:
            log.info("%s: allowed IPs on %s; re-applying active member %s", group.label,
                     ", ".join(self.name(group, k) for k in gp.holders(group, have))
                     or "no member", self.name(group, active))
        self._route(group, active, fresh[active], others=False)  # before traffic moves
        try:
            self.wg.set_allowed_ips(group.interface, changes)
        except WgError as exc:
            return str(exc)
        self._route(group, active, fresh[active], others=True)
        return None

    def _route(self, group: GroupConfig, active: str, dump: PeerDump, others: bool) -> None:
        """Full tunnels: a host route for the active member's endpoint; with `others`,
        the routes of the other members go."""
        routes = self.engine.routes
        if routes is None:
            return
        peer = self.peers().get((group.interface, active))
        if not others and dump.endpoint is not None and peer is not None \
                and covers_endpoint(peer, dump.endpoint.address):
            routes.ensure((group.interface, active), group.interface, dump.endpoint.address)
        for key in group.members if others else ():
            if key != active:
                routes.retain((group.interface, key), None)

    def traffic(self, group: GroupConfig, key: str) -> bool | None:
        """Send a datagram into the tunnel (as a liveness check would) after the move;
        True when `key` receives, None when there is no address to send to."""
        peer = self.peers()[group.interface, key]
        fresh = self.members(group)
        if isinstance(fresh, str):
            return None
        target = self.engine.probe_target(peer, fresh[key])
        if target is None:
            return None
        start, rx = self.engine.clock(), fresh[key].rx_bytes
        next_kick = start
        for _ in range(100_000):  # bounded by the deadline below as well
            now = self.engine.clock()
            if now >= next_kick:
                self.engine.kick(group.interface, target)
                next_kick = now + peer.verify_timeout / 4
            self.engine.sleep(self.engine.poll)
            fresh = self.members(group)
            if not isinstance(fresh, str) and fresh[key].rx_bytes > rx:
                return True
            if self.engine.clock() - start >= peer.verify_timeout:
                break
        return False

    def handshakes(self, peers: Sequence[PeerConfig], dead: Collection[PeerId] = ()
                   ) -> list[Outcome]:
        """Re-create each member so that it handshakes, all at once: a standby on its
        current endpoint first, then its other candidates as the last round ranked
        them; a `dead` active member on its candidates as a round would try them
        (without a new liveness wait: its counters already showed it dead)."""
        dumps = self.engine.dumps(p.interface for p in peers)
        jobs = []
        for peer in peers:
            dump = dumps.get(peer.interface)
            pd = None if isinstance(dump, WgError | None) else dump.peers.get(peer.public_key)
            if pd is None:
                continue
            state = self.peer_state(peer)
            probes = {p.address: p for p in state.probes}
            prefer = cand.preferred_family(peer.family)
            repair = peer_id(peer) in dead
            if repair:  # as a round decides for a path shown dead: itself last
                decision = policy.decide(pd.endpoint, False, state.candidates, probes, prefer)
                order = list(decision.order) if isinstance(decision, policy.Try) else []
            else:
                order = policy.rank(state.candidates, probes, prefer)
            if pd.endpoint is not None and (not repair or not order):
                order = [pd.endpoint, *[e for e in order if e != pd.endpoint]]
            if order:
                why = f"{pd.endpoint or 'no endpoint'} not answering" if repair \
                    else "standby check"
                jobs.append(Job(peer, pd, tuple(order), why))
        outs = self.engine.verifier.run(jobs)
        for out in outs:  # not active: no host route left behind
            if self.engine.routes is not None and peer_id(out.peer) not in dead:
                self.engine.routes.retain(peer_id(out.peer), None)
        return outs
