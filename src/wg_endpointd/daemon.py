"""`wg-endpointd run`: the foreground loop under procd, and `status`.

Signal handlers only set flags; the loop wakes through a self-pipe. Timing
uses the monotonic clock; wall-clock time only goes into the state file.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import candidates as cand
from . import policy
from . import state as st
from .config import Config, PeerConfig
from .engine import Engine, Outcome
from .errors import ConfigError, WgEndpointdError, WgError
from .model import Endpoint
from .routes import HostRoutes
from .rundir import RunDir

log = logging.getLogger(__name__)


class Waiter:
    """Sleeps until a timeout or until a signal arrives."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)

    def __call__(self, timeout: float) -> None:
        select.select([self._r], [], [], max(0.0, timeout))
        try:
            while self._r.recv(64):
                pass
        except BlockingIOError:
            pass


class Daemon:
    def __init__(self, load: Callable[[], Config], engine: Engine, run_dir: RunDir,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 wait: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random,
                 config: Config | None = None) -> None:
        self.load, self.engine, self.run_dir = load, engine, run_dir
        self.clock, self.wall, self.wait, self.rand = clock, wall, wait, rand
        self.cfg = config if config is not None else load()
        self.states: dict[tuple[str, str], st.PeerState] = {}
        self.wake = self.reload = self.stop = False
        self.next_check = self.next_resolve = self.next_failback = 0.0
        self._written: dict[str, Any] | None = None
        engine.stopping = lambda: self.stop

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

    def _state(self, peer: PeerConfig) -> st.PeerState:
        return self.states.setdefault((peer.interface, peer.public_key), st.PeerState())

    def _set(self, peer: PeerConfig, new: st.PeerState) -> None:
        old = self._state(peer)
        if new.phase != old.phase:
            log.info("%s: %s -> %s (%s)", peer.label, old.phase, new.phase,
                     new.endpoint or "no endpoint")
        self.states[(peer.interface, peer.public_key)] = new

    def hotplug_names(self) -> list[str]:
        s = self.cfg.settings
        if not s.triggers:
            return ["*"]
        return list(dict.fromkeys([*s.triggers, *self.cfg.interfaces]))

    @staticmethod
    def _better(peer: PeerConfig, endpoint: Endpoint | None,
                candidates: Sequence[Endpoint]) -> list[Endpoint]:
        return policy.better(endpoint, candidates, cand.preferred_family(peer.family))

    # -- outcomes -> state -------------------------------------------------

    def apply(self, out: Outcome) -> None:
        peer, now = out.peer, self.clock()
        old = self._state(peer)
        state = dataclasses.replace(old, candidates=out.candidates or old.candidates,
                                    probes=tuple(out.probes.values()) or old.probes)
        if out.ok:
            phase = st.FALLBACK if self._better(peer, out.endpoint, state.candidates) \
                else st.HEALTHY
            state = st.verified(state, out.endpoint, now, self.wall(), phase)
            if out.status == "switched":
                log.info("%s: switched %s -> %s (%s)", peer.label, old.endpoint or "(none)",
                         out.endpoint, out.detail)
                state = dataclasses.replace(state, last_switch=st.Switch(
                    old.endpoint, out.endpoint, out.detail, self.wall()), better_since=None)
        elif out.status == "failed":
            delay = st.backoff(old.failures + 1, self.cfg.settings.check_interval,
                               self.cfg.settings.backoff_max, self.rand())
            state = st.repair_failed(state, now, delay)
            log.warning("%s: %s; next attempt in %.0f s", peer.label, out.detail, delay)
        else:
            state = dataclasses.replace(state, phase=st.DOWN)
            log.error("%s: %s", peer.label, out.detail)
        self._set(peer, state)

    # -- the loop ----------------------------------------------------------

    def full_round(self, why: str) -> None:
        (log.info if why == "interface event" else log.debug)(
            "checking %d peer(s): %s", len(self.peers), why)
        for out in self.engine.round(self.peers):
            self.apply(out)
        self.next_resolve = self.clock() + self.cfg.settings.resolve_interval

    def do_reload(self) -> None:
        try:
            cfg = self.load()
        except ConfigError as exc:
            log.error("reload failed, keeping the old configuration: %s", exc)
            return
        self.cfg = cfg
        _set_level(cfg.settings.log_level)
        keep = {(p.interface, p.public_key) for p in self.peers}
        self.states = {k: v for k, v in self.states.items() if k in keep}
        self.run_dir.write_hotplug_list(self.hotplug_names())
        for problem in cfg.problems:
            log.warning("%s", problem)
        log.info("configuration reloaded: %d managed peer(s)", len(self.peers))

    def check(self) -> None:
        """Liveness: read counters, repair dead peers, send due datagrams."""
        s, now = self.cfg.settings, self.clock()
        by_iface = self.engine.dumps(p.interface for p in self.peers)
        dead: list[PeerConfig] = []
        for peer in self.peers:
            dump = by_iface.get(peer.interface)
            pd = None if isinstance(dump, WgError | None) else dump.peers.get(peer.public_key)
            if pd is None:
                continue
            state = st.observe(self._state(peer), pd, now)
            if st.is_dead(state, now, s.dead_after) and now >= state.next_repair:
                dead.append(peer)
            elif st.wants_kick(state, now, s.check_interval):
                if self.engine.kick_peer(peer, pd):
                    state = dataclasses.replace(state, last_kick=now)
            self.states[(peer.interface, peer.public_key)] = state
        if dead:
            log.info("no sign of life for %g s: %s", s.dead_after,
                     ", ".join(p.label for p in dead))
            for out in self.engine.round(dead):
                self.apply(out)

    def failback(self) -> None:
        """Probe better candidates of peers on a fallback; try them after the hold time."""
        s, now = self.cfg.settings, self.clock()
        todo = [(p, self._better(p, self._state(p).endpoint, self._state(p).candidates))
                for p in self.peers if self._state(p).phase == st.FALLBACK]
        todo = [(p, better) for p, better in todo if better]
        if not todo:
            return
        probes = self.engine.probe_hint([[c.address for c in b] for _, b in todo],
                                        max(p.probe_timeout for p, _ in todo))
        for peer, better in todo:
            answered = any(probes.get(c.address) is not None and probes[c.address].answered
                           for c in better)
            state = st.note_better(self._state(peer), answered, now)
            self.states[(peer.interface, peer.public_key)] = state
            if not st.failback_due(state, now, s.failback_hold):
                continue
            log.info("%s: trying preferred %s after %.0f s", peer.label, better[0],
                     now - (state.better_since or now))
            out = self.engine.switch(peer, better, "failback")
            if out.status == "switched":
                self.apply(dataclasses.replace(out, candidates=state.candidates))
            else:
                log.info("%s: failback not verified, staying on %s", peer.label,
                         state.endpoint)
                self.states[(peer.interface, peer.public_key)] = st.failback_failed(
                    state, s.failback_hold, s.backoff_max)

    def step(self) -> float:
        """One pass of the loop; returns how long to sleep."""
        s = self.cfg.settings
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
            self.full_round("scheduled check")
        now = self.clock()
        if now >= self.next_check:
            self.check()
            self.next_check = now + poll_period(s.check_interval, s.dead_after)
        if now >= self.next_failback:
            self.failback()
            self.next_failback = now + s.check_interval
        self.write_state()
        return max(0.0, min(self.next_check, self.next_resolve, self.next_failback)
                   - self.clock())

    def run(self) -> int:
        pid = os.getpid()
        try:
            self.run_dir.read_state()
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("state file unreadable (%s); rebuilding it", exc)
        self.run_dir.write_hotplug_list(self.hotplug_names())
        self.run_dir.write_pid(pid)
        log.info("started: %d managed peer(s) on %s", len(self.peers),
                 ", ".join(self.cfg.interfaces) or "no interfaces")
        try:
            while not self.stop:
                try:
                    delay = self.step()
                except WgEndpointdError as exc:
                    log.error("%s", exc)
                    delay = self.cfg.settings.check_interval
                except Exception:  # never exit on a runtime fault
                    log.exception("unexpected error; continuing")
                    delay = self.cfg.settings.check_interval
                if not (self.stop or self.wake or self.reload):
                    self.wait(delay)
        finally:
            if self.engine.routes is not None:
                self.engine.routes.clear()  # type: ignore[attr-defined]
            self.run_dir.remove_pid(pid)
            log.info("stopped")
        return 0

    # -- state file --------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        peers = []
        for peer in self.peers:
            s = self._state(peer)
            sw = s.last_switch
            peers.append({
                "interface": peer.interface, "public_key": peer.public_key,
                "description": peer.description, "phase": s.phase,
                "endpoint": str(s.endpoint) if s.endpoint else None,
                "last_verified": s.last_verified,
                "candidates": [{"endpoint": str(c), "rtt_ms": _rtt(s, c.address),
                                "answered": _rtt(s, c.address) is not None}
                               for c in s.candidates],
                "last_switch": None if sw is None else {
                    "from": str(sw.old) if sw.old else None, "to": str(sw.new) if sw.new
                    else None, "reason": sw.reason, "at": sw.at},
            })
        return {"version": 1, "pid": os.getpid(), "peers": peers}

    def write_state(self) -> None:
        snap = self.snapshot()
        if snap != self._written:
            try:
                self.run_dir.write_state(snap)
                self._written = snap
            except OSError as exc:
                log.error("cannot write state file: %s", exc)


def _rtt(state: st.PeerState, address: str) -> float | None:
    for probe in state.probes:
        if probe.address == address:
            return None if probe.rtt_ms is None else round(probe.rtt_ms, 2)
    return None


def poll_period(check_interval: float, dead_after: float) -> float:
    """How often counters are read: fine enough to date life within the dead window."""
    return max(0.5, min(check_interval, dead_after / 3) / 2)


def _set_level(level: str) -> None:
    logging.getLogger("wg_endpointd").setLevel(level.upper())


def cmd_run(args: argparse.Namespace) -> int:
    from .cli import _setup_logging, without_tls

    without_tls()
    from . import config
    from .probe import IcmpProber
    from .wg import WgClient

    def load() -> Config:
        return config.load(args.config_dir)

    cfg = load()  # a bad config at start is a usage error (exit 2)
    _setup_logging("debug" if args.verbose else cfg.settings.log_level)
    if not cfg.settings.enabled:
        log.info("disabled in configuration (globals.enabled 0); exiting")
        return 0
    waiter = Waiter()
    routes = HostRoutes() if cfg.settings.host_routes else None
    daemon = Daemon(load, Engine(WgClient(), IcmpProber(), routes=routes), RunDir(),
                    wait=waiter, config=cfg)
    for signum in (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, daemon.on_signal)
    for problem in cfg.problems:
        log.warning("%s", problem)
    return daemon.run()
