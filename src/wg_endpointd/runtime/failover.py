"""Standby groups at run time: failover, failback and re-application of the active member.

The decisions are groups.py's; the `wg` operations are groupwg.py's. The daemon
calls `after_round` with each round's outcomes and `tick` between rounds; `once`
calls `begin_once` and `settle_once` around its single round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..config import Config, PeerConfig, Settings
from ..config.groupconf import GroupConfig
from ..core import groups as gp
from ..core import liveness as lv
from ..core import state as st
from ..core.errors import WgError
from ..core.events import Event, group_event
from ..core.model import InterfaceDump
from ..core.outcome import Outcome, PeerId, peer_id
from .engine import Engine
from .groupwg import AllowedIpsLike, GroupWg

log = logging.getLogger(__name__)
Dumps = Mapping[str, "InterfaceDump | WgError"]
__all__ = ["AllowedIpsLike", "Keeper"]


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
        self.io = GroupWg(engine, wg, lambda: self.by_id, peer_state)
        self.emit: Callable[[Event], None] = lambda _event: None  # failovers, failbacks
        self.next_read = 0.0  # the standbys' next `wg show` (read_due)

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

    def next_failback(self) -> float:
        """When the next failback falls due (the loop reads then, so the hold is kept
        to the cycle's precision, not rounded up to the next cycle)."""
        due = [t for g in self.groups if (t := gp.failback_due(g, self.states[g.name]))]
        return min(due, default=math.inf)

    def away(self) -> bool:
        """A group is on a standby: its preferred member's return is looked for at
        every cycle, not once a check_interval."""
        return any(self.states[g.name].active != g.members[0] for g in self.groups)

    def read_due(self, now: float, interval: float) -> bool:
        """Whether this check reads `wg` for the standbys' handshakes: once every
        `interval` (check_interval), and at every cycle while a group is away."""
        if not self.groups or (now < self.next_read - lv.SLACK and not self.away()):
            return False
        self.next_read = now + interval
        return True

    def actives(self) -> set[PeerId]:
        return {(g.interface, self.states[g.name].active) for g in self.groups}

    def members_of(self, idents: Iterable[PeerId]) -> list[PeerConfig]:
        """The other members of the groups these peers are active in."""
        wanted = set(idents)
        return [self.by_id[g.interface, k] for g in self.groups
                if (g.interface, self.states[g.name].active) in wanted
                for k in g.members if k != self.states[g.name].active
                and (g.interface, k) in self.by_id]

    def repair(self, dead: Sequence[PeerConfig]) -> list[Outcome]:
        """Active members found dead between rounds: their own candidates and the
        handshakes of the other members are tried at once (after_round decides)."""
        return self.io.handshakes([*dead, *self.members_of(map(peer_id, dead))],
                                  {peer_id(p) for p in dead})

    def reapply(self) -> None:
        """Put each group's allowed IPs back on its active member alone (after netifd
        re-created the interface, they are where UCI says)."""
        for group in self.groups:
            self._reapply(group)

    def _reapply(self, group: GroupConfig) -> None:
        absent = self.io.members(group)
        if isinstance(absent, str):  # netifd rebuilding the interface: its ifup wakes us
            log.debug("%s: %s; not re-applied now", group.label, absent)
            return
        problem = self.io.enforce(group, self.states[group.name].active, announce=True)
        if problem is not None:
            self._fault(group, f"cannot apply the active member: {problem}")

    # -- decisions -------------------------------------------------------------

    def _delay(self, member: gp.Member) -> float:
        return st.backoff(member.failures + 1, self.settings.check_interval,
                          self.settings.backoff_max, self.rand())

    def _checked(self, state: gp.GroupState, out: Outcome) -> gp.GroupState:
        key = out.peer.public_key
        fresh = self._handshake(out.peer.interface, key)
        return gp.checked(state, key, out.ok, self.clock(), self._delay(state.member(key)),
                          fresh)

    def _handshake(self, iface: str, key: str) -> float | None:
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

    def move(self, group: GroupConfig, state: gp.GroupState, order: Sequence[str],
             reason: str) -> gp.GroupState:
        """Give the allowed IPs to the first of `order` that passes traffic; put them
        back on the active member when none does."""
        old, start = state.active, self.clock()
        for key in order:
            problem = self.io.enforce(group, key)
            if problem is not None:
                self._fault(group, f"cannot move the allowed IPs: {problem}")
                self.io.enforce(group, old)
                return state
            if self.io.traffic(group, key) is not False:
                kind = "failback" if group.members.index(key) < group.members.index(old) \
                    else "failover"
                log.info("%s: %s %s -> %s (%s)", group.label, kind, self.io.name(group, old),
                         self.io.name(group, key), reason)
                self._fault(group, None)
                peer = self.by_id.get((group.interface, key))
                self.emit(group_event(group.name, group.interface, old, key, kind == "failback",
                                      peer.description if peer else "", self.wall(),
                                      self.clock() - start))
                return gp.moved(state, key, f"{kind}: {reason}", self.wall())
            log.info("%s: no traffic through %s after the move", group.label,
                     self.io.name(group, key))
        self.io.enforce(group, old)
        return state

    def after_round(self, outcomes: Sequence[Outcome]) -> None:
        """Fold a round's outcomes in; fail over groups whose active member failed."""
        by = {peer_id(o.peer): o for o in outcomes}
        for group in self.groups:
            state = self.states[group.name]
            for key in group.members:  # only a verified or a failed try proves anything
                out = by.get((group.interface, key))
                if out is not None and key != state.active and _proof(out) is not None:
                    state = self._checked(state, out)
            out = by.get((group.interface, state.active))
            if out is not None:
                state = gp.observed(state, state.active, None, _proof(out))
                if out.ok:
                    self._fault(group, None)
            if self.engine.routes is not None:  # not active: no host route left behind
                for key in group.members:
                    if key != state.active:
                        self.engine.routes.retain((group.interface, key), None)
            if out is not None and out.status == "failed":
                verified = [k for k in group.members if k != state.active
                            and (o := by.get((group.interface, k))) is not None and o.ok]
                if not verified:
                    self._fault(group, f"no member verified; {self.io.name(group, state.active)}"
                                " stays active")
                else:
                    why = f"{self.io.name(group, state.active)} dead: {out.detail}"
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
                    self._reapply(group)
                pd = dump.peers[state.active]
                alive = self.peer_state(self.by_id[group.interface, state.active]).phase
                state = gp.observed(state, state.active, float(pd.latest_handshake) or None,
                                    None if alive == st.UNKNOWN else alive != st.DOWN)
                for key in group.members:  # standbys that handshook on their own
                    seen = float(dump.peers[key].latest_handshake) or None
                    if key != state.active and seen is not None \
                            and gp.handshook(state.member(key), seen, self.wall()):
                        if state.member(key).health == gp.DEAD:
                            log.info("%s: %s handshakes again", group.label,
                                     self.io.name(group, key))
                        # `wg` shows whole seconds: the hold counts from the end of that
                        # second, so a failback never comes before it
                        state = gp.checked(state, key, True, now, 0.0, seen,
                                           since=now - max(0.0, self.wall() - seen - 1.0))
            due = gp.checks_due(group, state, now, self.settings.check_interval)
            for out in self.io.handshakes([self.by_id[group.interface, k] for k in due]):
                apply(out)
                state = self._checked(state, out)
            target = gp.failback_to(group, state, self.clock())
            if target is not None:
                since = state.member(target).alive_since or now
                was = state.active
                state = self.move(group, state, [target],
                                  f"{self.io.name(group, target)} handshaking for "
                                  f"{self.clock() - since:.0f} s")
                if state.active == was:
                    log.info("%s: failback to %s not verified; staying on %s", group.label,
                             self.io.name(group, target), self.io.name(group, was))
                    state = gp.failback_failed(state, target, group.failback_hold,
                                               self.settings.backoff_max)
            self.states[group.name] = state

    # -- `once` ------------------------------------------------------------------

    def begin_once(self) -> None:
        """`once` has no memory: the member that holds the allowed IPs is active (the
        preferred one when none or several do), and it is made the only holder."""
        for group in self.groups:
            fresh = self.io.members(group)
            active = group.members[0]
            if not isinstance(fresh, str):
                found = gp.holders(group, {k: d.allowed_ips for k, d in fresh.items()})
                active = found[0] if len(found) == 1 else active
            self.states[group.name] = gp.GroupState(active)
            self._fault(group, self.io.enforce(group, active, announce=True))

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


def _proof(out: Outcome) -> bool | None:
    """What an outcome says about a member's health: None for untested, absent, errors."""
    return True if out.ok else False if out.status == "failed" else None
