"""Standby groups at run time: move a group's allowed IPs between members with `wg`.

The decisions are groups.py's; this module reads `wg show`, checks members by
handshake, moves the allowed IPs with one `wg set` and sends a datagram to see
traffic flow. Each move is computed from the members as `wg` shows them just
before it, so a member's own allowed IPs are kept as the user or netifd left
them, and a member that is gone is never re-created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from . import candidates as cand
from . import groups as gp
from . import policy
from . import state as st
from .config import Config, PeerConfig, Settings, covers_endpoint, default_probe_address
from .engine import Engine
from .errors import WgError
from .groupconf import GroupConfig
from .model import InterfaceDump, PeerDump
from .outcome import Outcome, PeerId, peer_id
from .verify import Job

log = logging.getLogger(__name__)
Dumps = Mapping[str, "InterfaceDump | WgError"]


class AllowedIpsLike(Protocol):
    def set_allowed_ips(self, iface: str,
                        changes: Sequence[tuple[str, Sequence[str]]]) -> None: ...


class Keeper:
    """Holds each group's state and drives failover, failback and re-application."""

    def __init__(self, engine: Engine, wg: AllowedIpsLike, clock: Callable[[], float],
                 wall: Callable[[], float], rand: Callable[[], float],
                 peer_state: Callable[[PeerConfig], st.PeerState]) -> None:
        self.engine, self.wg, self.clock, self.wall, self.rand = engine, wg, clock, wall, rand
        self.peer_state = peer_state
        self.groups: tuple[GroupConfig, ...] = ()
        self.states: dict[str, gp.GroupState] = {}
        self.settings = Settings()
        self.by_id: dict[PeerId, PeerConfig] = {}
        self.fault: dict[str, str] = {}  # group name -> the fault being retried

    def configure(self, cfg: Config) -> None:
        """New configuration; a group that kept its name, interface and members keeps
        its state."""
        old = {g.name: g for g in self.groups}
        self.groups, self.settings = cfg.groups, cfg.settings
        self.by_id = {peer_id(p): p for p in cfg.managed()}
        states = {}
        for group in cfg.groups:
            was = old.get(group.name)
            same = was is not None and (was.interface, was.members) == (group.interface,
                                                                        group.members)
            states[group.name] = self.states[group.name] if same and group.name in \
                self.states else gp.start(group)
        self.states = states

    def standbys(self) -> set[PeerId]:
        """Members that are not active: the engine leaves their liveness to the group."""
        return {(g.interface, k) for g in self.groups for k in g.members
                if k != self.states[g.name].active}

    def members_of(self, idents: Iterable[PeerId]) -> list[PeerConfig]:
        """The other members of the groups these peers are active in."""
        wanted = set(idents)
        return [self.by_id[g.interface, k] for g in self.groups
                if (g.interface, self.states[g.name].active) in wanted
                for k in g.members if k != self.states[g.name].active
                and (g.interface, k) in self.by_id]

    # -- wg --------------------------------------------------------------------

    def _members(self, group: GroupConfig) -> dict[str, PeerDump] | str:
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
        re-application (netifd put the allowed IPs back where UCI says)."""
        fresh = self._members(group)
        if isinstance(fresh, str):
            return fresh
        have = {k: d.allowed_ips for k, d in fresh.items()}
        changes = gp.plan(group, active, have)
        if not changes:
            return None
        if announce:
            log.info("%s: allowed IPs on %s; re-applying active member %s", group.label,
                     ", ".join(self._name(group, k) for k in gp.holders(group, have))
                     or "no member", self._name(group, active))
        try:
            self.wg.set_allowed_ips(group.interface, changes)
        except WgError as exc:
            return str(exc)
        self._route(group, active, fresh[active])
        return None

    def _route(self, group: GroupConfig, active: str, dump: PeerDump) -> None:
        """Full tunnels: a host route for the active member's endpoint only."""
        routes = self.engine.routes
        if routes is None:
            return
        for key in group.members:
            ident = (group.interface, key)
            peer = self.by_id.get(ident)
            keep = dump.endpoint if key == active else None
            if keep is not None and peer is not None and covers_endpoint(peer, keep.address):
                routes.ensure(ident, group.interface, keep.address)
            routes.retain(ident, keep.address if keep else None)

    def traffic(self, group: GroupConfig, key: str) -> bool | None:
        """Send a datagram to the group's tunnel address; True when `key` receives,
        None when there is no address to send to."""
        peer = self.by_id[group.interface, key]
        target = peer.probe_address or default_probe_address(group.allowed_ips)
        fresh = self._members(group)
        if target is None or isinstance(fresh, str):
            return None
        start, rx = self.clock(), fresh[key].rx_bytes
        next_kick = start
        for _ in range(100_000):  # bounded by the deadline below as well
            now = self.clock()
            if now >= next_kick:
                self.engine.kick(group.interface, target)
                next_kick = now + peer.verify_timeout / 4
            self.engine.sleep(self.engine.poll)
            fresh = self._members(group)
            if not isinstance(fresh, str) and fresh[key].rx_bytes > rx:
                return True
            if self.clock() - start >= peer.verify_timeout:
                break
        return False

    def handshakes(self, peers: Sequence[PeerConfig]) -> list[Outcome]:
        """Re-create each member so that it handshakes: its current endpoint first,
        then its other candidates as the last round ranked them."""
        dumps = self.engine.dumps(p.interface for p in peers)
        jobs = []
        for peer in peers:
            dump = dumps.get(peer.interface)
            pd = None if isinstance(dump, WgError | None) else dump.peers.get(peer.public_key)
            if pd is None:
                continue
            state = self.peer_state(peer)
            probes = {p.address: p for p in state.probes}
            order = policy.rank(state.candidates, probes, cand.preferred_family(peer.family))
            if pd.endpoint is not None:
                order = [pd.endpoint, *[e for e in order if e != pd.endpoint]]
            if order:
                jobs.append(Job(peer, pd, tuple(order), "standby check"))
        outs = self.engine.verifier.run(jobs)
        for out in outs:  # not active: no host route left behind
            if self.engine.routes is not None:
                self.engine.routes.retain(peer_id(out.peer), None)
        return outs

    # -- decisions -------------------------------------------------------------

    def _delay(self, member: gp.Member) -> float:
        return st.backoff(member.failures + 1, self.settings.check_interval,
                          self.settings.backoff_max, self.rand())

    def _checked(self, state: gp.GroupState, out: Outcome) -> gp.GroupState:
        key = out.peer.public_key
        fresh = self._members_quiet(out.peer.interface, key)
        return gp.checked(state, key, out.ok, self.clock(), self._delay(state.member(key)),
                          fresh)

    def _members_quiet(self, iface: str, key: str) -> float | None:
        dump = self.engine.dumps([iface])[iface]
        if isinstance(dump, WgError) or key not in dump.peers:
            return None
        return float(dump.peers[key].latest_handshake) or None

    def _fault(self, group: GroupConfig, text: str | None) -> None:
        """Log a group's fault when it starts, changes and ends, not every attempt."""
        old = self.fault.pop(group.name, None)
        if text is not None:
            self.fault[group.name] = text
            if text != old:
                log.warning("%s: %s", group.label, text)
        elif old is not None:
            log.info("%s: working again", group.label)

    def _name(self, group: GroupConfig, key: str | None) -> str:
        peer = self.by_id.get((group.interface, key or ""))
        return peer.name if peer else (key or "(none)")[:8]

    def move(self, group: GroupConfig, state: gp.GroupState, order: Sequence[str],
             reason: str) -> gp.GroupState:
        """Give the allowed IPs to the first of `order` that passes traffic; put them
        back on the active member when none does."""
        old = state.active
        for key in order:
            problem = self.enforce(group, key)
            if problem is not None:
                self._fault(group, f"cannot move the allowed IPs: {problem}")
                self.enforce(group, old)
                return state
            if self.traffic(group, key) is not False:
                kind = "failback" if group.members.index(key) < group.members.index(old) \
                    else "failover"
                log.info("%s: %s %s -> %s (%s)", group.label, kind, self._name(group, old),
                         self._name(group, key), reason)
                self._fault(group, None)
                return gp.moved(state, key, f"{kind}: {reason}", self.wall())
            log.info("%s: no traffic through %s after the move", group.label,
                     self._name(group, key))
        self.enforce(group, old)
        return state

    def after_round(self, outcomes: Sequence[Outcome]) -> None:
        """Fold a round's outcomes in; fail over groups whose active member failed."""
        by = {peer_id(o.peer): o for o in outcomes}
        for group in self.groups:
            state = self.states[group.name]
            for key in group.members:
                out = by.get((group.interface, key))
                if out is not None and key != state.active:
                    state = self._checked(state, out)
            out = by.get((group.interface, state.active))
            if out is not None:
                state = gp.observed(state, state.active, None, out.ok)
            if self.engine.routes is not None:  # not active: no host route left behind
                for key in group.members:
                    if key != state.active:
                        self.engine.routes.retain((group.interface, key), None)
            if out is not None and out.status == "failed":
                verified = [k for k in group.members if k != state.active
                            and (o := by.get((group.interface, k))) is not None and o.ok]
                if not verified:
                    self._fault(group, f"no member verified; {self._name(group, state.active)}"
                                " stays active")
                else:
                    why = f"{self._name(group, state.active)} dead: {out.detail}"
                    state = self.move(group, state, verified, why)
            self.states[group.name] = state

    def tick(self, dumps: Dumps, apply: Callable[[Outcome], None]) -> None:
        """Between rounds: re-apply the active member where netifd moved the allowed
        IPs, check members that are due, and fail back after the hold time."""
        now = self.clock()
        for group in self.groups:
            state = self.states[group.name]
            dump = dumps.get(group.interface)
            if isinstance(dump, InterfaceDump) and all(k in dump.peers for k in group.members):
                have = {k: dump.peers[k].allowed_ips for k in group.members}
                if gp.plan(group, state.active, have):
                    self._fault(group, self.enforce(group, state.active, announce=True))
                pd = dump.peers[state.active]
                alive = self.peer_state(self.by_id[group.interface, state.active]).phase
                state = gp.observed(state, state.active, float(pd.latest_handshake) or None,
                                    None if alive == st.UNKNOWN else alive != st.DOWN)
            due = gp.checks_due(group, state, now, self.settings.check_interval)
            for out in self.handshakes([self.by_id[group.interface, k] for k in due]):
                apply(out)
                state = self._checked(state, out)
            target = gp.failback_to(group, state, self.clock())
            if target is not None:
                since = state.member(target).alive_since or now
                was = state.active
                state = self.move(group, state, [target],
                                  f"{self._name(group, target)} handshaking for "
                                  f"{self.clock() - since:.0f} s")
                if state.active == was:
                    log.info("%s: failback to %s not verified; staying on %s", group.label,
                             self._name(group, target), self._name(group, was))
                    state = gp.failback_failed(state, target, group.failback_hold,
                                               self.settings.backoff_max)
            self.states[group.name] = state

    # -- `once` ------------------------------------------------------------------

    def begin_once(self) -> None:
        """`once` has no memory: the member that holds the allowed IPs is active (the
        preferred one when none or several do), and it is made the only holder."""
        for group in self.groups:
            fresh = self._members(group)
            active = group.members[0]
            if not isinstance(fresh, str):
                found = gp.holders(group, {k: d.allowed_ips for k, d in fresh.items()})
                active = found[0] if len(found) == 1 else active
            self.states[group.name] = gp.GroupState(active)
            self._fault(group, self.enforce(group, active, announce=True))

    def settle_once(self, outcomes: Sequence[Outcome]) -> set[PeerId]:
        """Fail over as the daemon does, then fail back to the first member ahead of
        the active one that verified (no hold: `once` cannot watch). Returns the
        members of groups that end on a working member."""
        first = {g.name: self.states[g.name].active for g in self.groups}
        self.after_round(outcomes)
        by = {peer_id(o.peer): o for o in outcomes}
        working: set[PeerId] = set()
        for group in self.groups:
            state = self.states[group.name]
            ahead = [k for k in group.members[:group.members.index(state.active)]
                     if (o := by.get((group.interface, k))) is not None and o.ok]
            if ahead:
                state = self.move(group, state, ahead[:1], "it verified")
            self.states[group.name] = state
            out = by.get((group.interface, state.active))
            if state.active != first[group.name] or (out is not None and out.ok):
                working |= {(group.interface, k) for k in group.members}
        return working
