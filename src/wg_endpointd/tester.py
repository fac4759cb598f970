"""Test datagrams into tunnels: planned at each read of WireGuard's counters and sent
when due, so that their verdicts fall on the next read (the timing is liveness.py's)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, MutableMapping

from . import liveness as lv
from .outcome import PeerId
from .state import PeerState

Targets = Mapping[PeerId, tuple[str, str]]  # peer -> (interface, address to aim at)


class Tester:
    def __init__(self, kick: Callable[[str, str], bool], clock: Callable[[], float]) -> None:
        self.kick, self.clock = kick, clock
        self.planned: dict[PeerId, tuple[float, str, str]] = {}  # when, iface, target
        self.next_read = 0.0  # the next cycle's read

    def plan(self, states: MutableMapping[PeerId, PeerState], targets: Targets,
             now: float, interval: float) -> None:
        """At a read: send what is due now; at a cycle's read, set the next read (after
        those datagrams, so their verdicts can share it); then time the others."""
        for key, (iface, target) in targets.items():
            at = lv.plan_kick(states[key], now, now + interval, interval)
            if key not in self.planned and at is not None and at <= now:
                self._send(states, key, iface, target)
        if now >= self.next_read - lv.SLACK:
            self.next_read = lv.next_cycle(now, interval, (
                v for state in states.values() if (v := lv.verdict_at(state))))
        for key, (iface, target) in targets.items():
            at = lv.plan_kick(states[key], now, self.next_read, interval)
            if key not in self.planned and at is not None:
                self.planned[key] = (at, iface, target)

    def send_due(self, states: MutableMapping[PeerId, PeerState]) -> None:
        now = self.clock()
        for key, (at, iface, target) in list(self.planned.items()):
            if key not in states:
                del self.planned[key]
            elif now >= at:
                self._send(states, key, iface, target)

    def _send(self, states: MutableMapping[PeerId, PeerState], key: PeerId, iface: str,
              target: str) -> None:
        self.planned.pop(key, None)
        if self.kick(iface, target):
            states[key] = lv.kicked(states[key], self.clock())

    def cancel(self, key: PeerId) -> None:
        self.planned.pop(key, None)

    def keep_only(self, keys: Collection[PeerId]) -> None:
        self.planned = {k: v for k, v in self.planned.items() if k in keys}

    def next_due(self) -> float:
        return min((at for at, _, _ in self.planned.values()), default=math.inf)
