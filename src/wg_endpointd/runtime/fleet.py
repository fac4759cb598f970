"""What a fleet sees of one daemon: its events (core/events.py) as they happen, handed
to the consumers in `sinks` (user hooks); the history of each peer and group for the
state file; and the counters of the metrics file.

The Fleet lives as long as the daemon's process: a SIGHUP reload keeps it (counters go
on), a restart starts at zero, as Prometheus expects of counters. The history alone is
read back from the previous run's state file, when there is one.
Only the loop calls it, except `timed`'s wrapper, which runs beside it (repairs.py).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..config import PeerConfig
from ..core import events as ev
from ..core.outcome import Outcome, PeerId, peer_id
from ..core.state import DOWN, PeerState
from .metrics import Metrics
from .repairs import Work

log = logging.getLogger("wg_endpointd.runtime.daemon")


class Fleet:
    def __init__(self, clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.clock, self.wall = clock, wall
        self.sinks: list[Callable[[ev.Event], None]] = []  # each event goes to each of them
        self.peers: dict[PeerId, list[dict[str, Any]]] = {}  # history, oldest first
        self.groups: dict[str, list[dict[str, Any]]] = {}
        self.switches: dict[PeerId, Counter[str]] = {}  # peer -> reason -> count
        self.failovers: Counter[str] = Counter()  # group name
        self.failbacks: Counter[str] = Counter()
        self.faults = 0
        self.took: dict[PeerId, float] = {}  # the last verification's duration
        self.started = wall()
        self.rounds = 0
        self.round_at: float | None = None  # wall clock: when the last full round ended
        self.round_took: float | None = None
        self._lock = threading.Lock()  # rounds end beside the loop
        self._failing: set[int] = set()  # sinks whose failure was logged
        self.metrics = Metrics()  # the metrics file (metrics.py)

    # -- events ------------------------------------------------------------------

    def peer(self, peer: PeerConfig, old: PeerState, new: PeerState,
             out: Outcome | None = None) -> None:
        """A peer's state changed from `old` to `new` (through `out`, a round's or a
        repair's outcome, if any): count, remember and hand on what happened."""
        ident = peer_id(peer)
        if new.fault is not None and old.fault is None:
            self.faults += 1
        took = None if out is None else out.took
        if took is not None:
            self.took[ident] = took
        down_at = ev.last_at(self.peers.get(ident, ()), ev.PEER_DOWN) \
            if old.phase == DOWN else None
        for event in ev.peer_events(peer, old, new, self.wall(), took,
                                    out is None or out.status == "failed", down_at):
            self.emit(event)

    def emit(self, event: ev.Event) -> None:
        """Record one event (history, counters), then hand it to every sink; a sink that
        fails is logged once and never stops the daemon or the other sinks."""
        item = ev.entry(event)
        if event.group:
            self.groups[event.group] = ev.remember(self.groups.get(event.group, ()), item)
            (self.failbacks if event.action == ev.FAILBACK else self.failovers)[event.group] += 1
        else:
            ident = (event.interface, event.public_key)
            self.peers[ident] = ev.remember(self.peers.get(ident, ()), item)
            if event.action == ev.SWITCH:
                self.switches.setdefault(ident, Counter())[event.reason] += 1
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception:  # a consumer's bug must not stop the loop
                if id(sink) not in self._failing:
                    self._failing.add(id(sink))
                    log.exception("an event consumer failed; it keeps getting events")

    # -- rounds ------------------------------------------------------------------

    def timed(self, work: Work) -> Work:
        """`work` (a full round, run beside the loop) counted and timed."""
        def run(early: Callable[[Outcome], None]) -> list[Outcome]:
            start = self.clock()
            try:
                return work(early)
            finally:
                with self._lock:
                    self.rounds += 1
                    self.round_took = self.clock() - start
                    self.round_at = self.wall()
        return run

    def round_facts(self) -> tuple[int, float | None, float | None]:
        with self._lock:
            return self.rounds, self.round_at, self.round_took

    # -- the configuration changed, the daemon started ------------------------------

    def keep_only(self, peers: Collection[PeerId], groups: Collection[str]) -> None:
        """Forget the peers and groups a reload dropped (their counters too)."""
        self.peers = {k: v for k, v in self.peers.items() if k in peers}
        self.groups = {k: v for k, v in self.groups.items() if k in groups}
        self.took = {k: v for k, v in self.took.items() if k in peers}
        self.switches = {k: v for k, v in self.switches.items() if k in peers}
        for counter in (self.failovers, self.failbacks):
            for name in [n for n in counter if n not in groups]:
                del counter[name]

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take the histories of an earlier run's state file (counters start at zero)."""
        for p in _items(state.get("peers")):
            if isinstance(p, dict) and isinstance(p.get("interface"), str) \
                    and isinstance(p.get("public_key"), str) and p.get("history"):
                ident = (p["interface"], p["public_key"])
                self.peers[ident] = (ev.restored(p["history"])
                                     + self.peers.get(ident, []))[-ev.HISTORY:]
        for g in _items(state.get("groups")):
            if isinstance(g, dict) and isinstance(g.get("name"), str) and g.get("history"):
                self.groups[g["name"]] = (ev.restored(g["history"])
                                          + self.groups.get(g["name"], []))[-ev.HISTORY:]


def _items(value: object) -> list[object]:
    return value if isinstance(value, list) else []
