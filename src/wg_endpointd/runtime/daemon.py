"""The daemon's loop: rounds, liveness checks, failback, reloads, the state file.

Signal handlers only set flags; the loop wakes through a self-pipe (service.py).
Timing uses the monotonic clock; wall-clock time only goes into the state file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any, cast

from ..config import Config, PeerConfig
from ..core import faults
from ..core import liveness as lv
from ..core import state as st
from ..core.errors import WgError
from ..core.model import Endpoint
from ..core.outcome import Outcome, peer_id
from ..system.rundir import RunDir
from ..system.statefile import StateFile
from . import collect, failback, reload, snapshot
from .engine import Engine
from .failover import AllowedIpsLike, Keeper
from .faultlog import FaultLog
from .fleet import Fleet
from .repairs import Repairs, run_now
from .tester import Tester
from .verify import RoutesLike

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, load: Callable[[], Config], engine: Engine, run_dir: RunDir,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 wait: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random,
                 config: Config | None = None,
                 make_routes: Callable[[], RoutesLike] | None = None,
                 spawn: Callable[[Callable[[], None]], None] = run_now,
                 notify: Callable[[], None] = lambda: None) -> None:
        self.load, self.engine, self.run_dir = load, engine, run_dir
        self.clock, self.wall, self.wait, self.rand = clock, wall, wait, rand
        self.cfg = config if config is not None else load()
        self.make_routes = make_routes
        self.states: dict[tuple[str, str], st.PeerState] = {}
        self.wake = self.reload = self.stop = False
        self.next_check = self.next_resolve = self.next_failback = 0.0
        self.faultlog = FaultLog()  # per-peer lines within a router log's budget
        self.tester = Tester(lambda iface, target: self.engine.kick(iface, target), clock,
                             lambda iface: self.engine.iface_rx(iface),
                             lambda: self.engine.answers(), lambda: self.engine.packets())
        self.state_file = StateFile(run_dir, wall)
        self.last_round: dict[str, object] | None = None
        self.repairs = Repairs(spawn, notify)  # beside the loop: no peer holds up another
        self.skipped: set[tuple[str, str]] = set()  # under repair when a check came
        self.owed: set[tuple[str, str]] = set()  # under repair when an event came
        self.pruned = False  # routes of an earlier run that the first round left unclaimed
        self.on_reload: Callable[[bool], None] = lambda _done: None  # systemd told (announce.py)
        engine.stopping = lambda: self.stop
        # the engine's `wg` adapter (WgClient) also moves allowed IPs
        self.groups = Keeper(engine, cast(AllowedIpsLike, engine.wg), clock, wall, rand,
                             self._state)
        self.groups.configure(self.cfg)
        self.fleet = Fleet(clock, wall)  # events, history, counters, metrics (fleet.py)
        self.groups.emit = self.fleet.emit  # failovers and failbacks
        self.events = self.fleet.sinks  # who hears of each event (the hooks)

    # -- signals -----------------------------------------------------------

    def on_signal(self, signum: int, _frame: object = None) -> None:
        if signum == signal.SIGUSR1:
            self.wake = True
        elif signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop = True

    # -- helpers -----------------------------------------------------------

    @property
    def peers(self) -> list[PeerConfig]:
        return self.cfg.managed()

    def own_peers(self) -> list[PeerConfig]:
        """Peers whose liveness the daemon checks itself: all but standby members."""
        standby = self.groups.standbys()
        return [p for p in self.peers if peer_id(p) not in standby]

    def _state(self, peer: PeerConfig) -> st.PeerState:
        return self.states.setdefault(peer_id(peer), st.PeerState())

    def _set(self, peer: PeerConfig, new: st.PeerState, out: Outcome | None = None) -> None:
        old = self._state(peer)
        if new.phase != old.phase:
            self.faultlog.line(peer.label, logging.INFO, f"{old.phase} -> {new.phase} "
                                                         f"({new.endpoint or 'no endpoint'})")
        self.states[peer_id(peer)] = new
        self.fleet.peer(peer, old, new, out)  # switch, down, up

    def hotplug_names(self) -> list[str]:
        s = self.cfg.settings
        if not s.triggers:
            return ["*"]
        return list(dict.fromkeys([*s.triggers, *self.cfg.interfaces]))

    # -- outcomes -> state -------------------------------------------------

    def apply(self, out: Outcome) -> None:
        peer, old = out.peer, self._state(out.peer)
        cands = out.candidates or old.candidates
        delay = st.backoff(old.failures + 1, self.cfg.settings.check_interval,
                           self.cfg.settings.backoff_max, self.rand())
        state, lines = st.settle(old, st.Result(out.status, out.endpoint, out.detail,
                                                out.before, out.candidates,
                                                tuple(out.probes.values())),
                                 self.clock(), self.wall(),
                                 bool(failback.better(peer, out.endpoint, cands)), delay)
        for level, text in lines:
            self.faultlog.line(peer.label, level, text)
        if out.ok and out.endpoint is not None:
            self.engine.remembered[peer_id(peer)] = out.endpoint
        self._set(peer, state, out)

    def _apply_all(self, outcomes: list[Outcome]) -> None:
        with self.faultlog.batch():
            for out in outcomes:
                self.apply(out)
            self.groups.after_round(outcomes)

    # -- the loop ----------------------------------------------------------

    def full_round(self, why: str, only: set[tuple[str, str]] | None = None) -> None:
        busy = self.repairs.busy()  # their repair goes on; they report when it ends
        if why == "interface event":  # their repair may have judged the old network
            self.owed |= busy
        peers = [p for p in self.peers if peer_id(p) not in busy
                 and (only is None or peer_id(p) in only)]
        self.owed -= {peer_id(p) for p in peers}
        (log.info if why == "interface event" else log.debug)(
            "checking %d peer(s): %s%s", len(peers), why,
            f" ({len(busy)} under repair already)" if busy else "")
        self.groups.reapply()  # netifd may have put a group's allowed IPs elsewhere
        self.tester.hear(self.states)  # answers in already: a verdict waits for the read
        self.tester.forget()
        scheduled, now = why == "scheduled check", self.clock()
        shown = [peer_id(p) for p in self.own_peers() if scheduled and lv.shown_alive(
            self._state(p), now, self.cfg.settings.dead_after)]
        quiet = faults.failing(self.states)
        self.last_round = {"at": round(self.wall(), 3), "reason": why}
        self.next_resolve = self.clock() + self.cfg.settings.resolve_interval
        if peers:
            self.repairs.start("full", map(peer_id, peers), self.fleet.timed(
                lambda early: self.engine.round(peers, leave_idle=scheduled,
                                                known_alive=shown, quiet=quiet, early=early)))
        self.collect()

    def collect(self) -> bool:
        """Apply what the repairs beside the loop handed back; True when anything was."""
        return collect.take(self)

    def do_reload(self) -> None:
        reload.apply(self)

    def check(self) -> None:
        """Liveness: one `wg show` for every peer, unless interface counters settle the
        look (tester.py); repair dead peers; plan test datagrams so that their verdicts
        fall on the next cycle's read (liveness.py)."""
        with self.faultlog.batch():
            self._check()

    def _check(self) -> None:
        s, now = self.cfg.settings, self.clock()
        busy = self.repairs.busy()  # judged when their repair ends
        self.skipped |= busy
        peers = [p for p in self.own_peers() if peer_id(p) not in busy]
        own = [(peer_id(p), p.interface) for p in peers]
        self.tester.hear(self.states)
        rx = self.tester.counters(own, self.states)
        self.tester.settle(self.states, own, rx)
        read = self.groups.read_due(now, s.check_interval) \
            or self.tester.read_due(self.states, own)
        by_iface = self.engine.dumps(p.interface for p in self.peers) if read else {}
        if not read:
            self.tester.busy(self.states, own, rx, now)
        dead: list[PeerConfig] = []
        targets: dict[tuple[str, str], tuple[str, str]] = {}
        for peer in peers:
            key = peer_id(peer)
            if read:
                dump = by_iface.get(peer.interface)
                pd = None if isinstance(dump, WgError | None) else dump.peers.get(
                    peer.public_key)
                if pd is None:
                    continue
                state = st.observe(self._state(peer), pd, now, self.wall())
                target = self.engine.probe_target(peer, pd)
                self.tester.note_untestable(key, peer.label, target)
            else:
                state, target = self._state(peer), self.tester.targets[key][1]
            silent = target is not None and lv.unanswered(state, now)
            if (silent or st.is_dead(state, now, s.dead_after, target is not None)) \
                    and now >= state.next_repair:
                dead.append(peer)
                why = (f"no answer to a test datagram within {lv.answer_wait(state):.1f} s"
                       if silent else f"no sign of life for {s.dead_after:g} s")
                self.faultlog.line(peer.label, logging.DEBUG if state.fault else logging.INFO,
                                   why)  # a known fault: the summary line tells
                state = lv.judged(state)
                self.tester.cancel(key)
            elif target is not None:
                targets[key] = (peer.interface, target)
            self._set(peer, state)  # WireGuard may have moved its endpoint (roaming)
        if read:
            self.tester.note_read(by_iface, targets, rx, now)
        self.tester.plan(self.states, targets, now, lv.cycle(s.check_interval, self.cfg.groups))
        if dead:
            actives = self.groups.actives()
            plain = [p for p in dead if peer_id(p) not in actives]
            quiet = faults.failing(self.states)
            if plain:
                self.repairs.start("repair", map(peer_id, plain), lambda early: self.engine.round(
                    plain, quiet=quiet, early=early))
            grouped = [p for p in dead if peer_id(p) in actives]
            if grouped:
                self._apply_all(self.groups.repair(grouped))
            self.collect()
        if read:
            self.groups.tick(by_iface, self.apply)

    def step(self) -> float:
        """One pass of the loop; returns how long to sleep."""
        s = self.cfg.settings
        # more than test datagrams: the state may show it
        looked = self.collect() or self.reload or self.wake
        if self.reload:
            self.reload = False
            self.do_reload()
        now = self.clock()
        if self.wake:
            self.wake = False
            for key, state in self.states.items():
                self.states[key] = dataclasses.replace(state, next_repair=0.0)
            self.full_round("interface event")
        elif now >= self.next_resolve:
            self.full_round("scheduled check" if self.last_round else "start")
            looked = True
        elif owed := self.owed - self.repairs.busy():
            self.full_round("interface event", only=owed)
            looked = True
        now = self.clock()
        self.tester.watch(self.states, self.repairs.busy(), now)
        if now >= self.next_check:
            self.check()
            looked = True
        self.tester.send_due(self.states)
        now = self.clock()
        urgent = self.tester.urgent
        looks = [t for key, st_ in self.states.items() if (t := lv.next_look(
            st_, now, None if key in urgent else self.tester.next_read)) is not None]
        failback_at = max(self.groups.next_failback(), now + 0.1)  # never a busy loop
        self.next_check = min([self.tester.next_read, *looks, failback_at])
        fallback = any(x.phase == st.FALLBACK for x in self.states.values())
        if fallback and now >= self.next_failback:
            busy = self.repairs.busy()
            failback.run([p for p in self.peers if peer_id(p) not in busy], self.states, s,
                         self.engine, now, self._try_better)
            looked = True
        if not fallback or now >= self.next_failback:  # no wake-ups while nothing is to do
            self.next_failback = now + s.check_interval
        looked = self.collect() or looked
        self.faultlog.summarise(now, self.states, lambda: {peer_id(p): p.label for p in self.peers})
        if looked or self.fleet.metrics.due(now):
            self.write_state()
        return max(0.0, min(self.next_check, self.next_resolve, self.tester.next_due(),
                            self.tester.sample_at, self.fleet.metrics.deadline(self.next_check),
                            self.next_failback if fallback else math.inf) - self.clock())

    def _try_better(self, peer: PeerConfig, ahead: list[Endpoint]) -> None:
        self.repairs.start("failback", [peer_id(peer)],
                           lambda _early: [self.engine.switch(peer, ahead, "failback")])

    # -- state file --------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        unmanaged = [p for p in self.cfg.peers if not p.managed]
        return snapshot.build(self.peers, self.states, os.getpid(), unmanaged, self.last_round,
                              snapshot.groups(self.cfg.groups, self.groups.states,
                                              self.cfg.peers, self.fleet.groups),
                              self.fleet.peers)

    def write_state(self) -> None:
        self.fleet.metrics.write(self, self.state_file.write(self.snapshot()))

