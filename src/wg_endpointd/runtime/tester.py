"""Test datagrams into tunnels: planned at each read of WireGuard's counters and sent
when due, so that their verdicts fall on the next read (the timing is liveness.py's).

A test of a peer that has its interface to itself and answers at once is judged by the
interface's own counters (a file read: the answer is a packet in). A look needs no
`wg show` at all when every peer is like that; anything else is read. An inner reply
(the far stack's port unreachable, tunnel.py) is heard on the sending socket itself:
it answers the test whatever traffic the tunnel carries."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence

from ..core import liveness as lv
from ..core.errors import WgError
from ..core.model import InterfaceDump
from ..core.outcome import PeerId
from ..core.state import PeerState

log = logging.getLogger("wg_endpointd.runtime.daemon")

Targets = Mapping[PeerId, tuple[str, str]]  # peer -> (interface, address to aim at)


class Tester:
    def __init__(self, kick: Callable[[str, str], bool], clock: Callable[[], float],
                 iface_rx: Callable[[str], int | None],
                 answers: Callable[[], Mapping[tuple[str, str], float]] = dict,
                 packets: Callable[[], Mapping[str, tuple[int, int]]] = dict) -> None:
        self.kick, self.clock, self.iface_rx, self.answers = kick, clock, iface_rx, answers
        self.packets = packets  # every interface's (in, out) packets, one read
        self.flows: dict[str, lv.Flow] = {}
        self.sample_at = math.inf  # when `watch` looks next between the cycle's reads
        self.urgent: set[PeerId] = set()  # tests sent at once: judged at their verdict
        self.triggered: dict[PeerId, float] = {}
        self.own_out: dict[str, int] = {}  # test datagrams sent into each interface
        self.sent_to: dict[PeerId, tuple[str, str]] = {}  # where each test went
        self.planned: dict[PeerId, tuple[float, str, str]] = {}  # when, iface, target
        self.next_read = 0.0  # the next cycle's read
        self.targets: dict[PeerId, tuple[str, str]] = {}  # as of the last read
        self.peers_on: dict[str, int] = {}  # peers per interface, as of the last read
        self.rx_seen: dict[str, int] = {}  # interface counters at the last look
        self.seen_at = 0.0
        self.rx_at_kick: dict[PeerId, int | None] = {}
        self.untestable: set[PeerId] = set()  # logged once each

    def plan(self, states: MutableMapping[PeerId, PeerState], targets: Targets,
             now: float, interval: float) -> None:
        """At a read: send what is due now; at a cycle's read, set the next read (after
        those datagrams, so their verdicts can share it); then time the others."""
        for key, (iface, target) in targets.items():
            at = lv.plan_kick(states[key], now, now + interval, interval)
            if key not in self.planned and at is not None and at <= now:
                self._send(states, key, iface, target)
        if now >= self.next_read - lv.SLACK:
            self.next_read = lv.next_cycle(now, interval, lv.merged(states.values()))
        ahead = lv.lead(states[k] for k in targets)
        for key, (iface, target) in targets.items():
            at = lv.plan_kick(states[key], now, self.next_read, interval, ahead)
            if key not in self.planned and at is not None:
                self.planned[key] = (at, iface, target)
        # a prompt datagram held back by the one-per-interval rule moves the read, so that
        # its verdict still falls on it (reads and sends stay together: no extra wake-up)
        held = [at for key, (at, _, _) in self.planned.items()
                if key in targets and lv.prompt(states[key])]
        if held and ahead:
            self.next_read = max(self.next_read, max(held) + ahead)

    def note_read(self, dumps: Mapping[str, InterfaceDump | WgError], targets: Targets,
                  rx: Mapping[str, int], now: float) -> None:
        """After a `wg show`: peers per interface, where tests go, counters as of now."""
        self.peers_on = {i: len(d.peers) for i, d in dumps.items()
                         if not isinstance(d, WgError)}
        self.targets = dict(targets)
        self.rx_seen = dict(rx)
        self.seen_at = now

    def hear(self, states: MutableMapping[PeerId, PeerState]) -> None:
        """Pending tests whose address answered on the socket after they went out."""
        heard = self.answers()
        for key, where in self.sent_to.items() if heard else ():
            at, state = heard.get(where), states.get(key)
            if at is not None and state is not None and lv.pending(state) \
                    and state.last_kick is not None and at >= state.last_kick:
                states[key] = lv.heard(state, at)

    def counters(self, peers: Sequence[tuple[PeerId, str]],
                 states: Mapping[PeerId, PeerState]) -> dict[str, int]:
        """Each peer interface's packets in, read once per look; not for interfaces whose
        peers are all heard on the socket (the counters would tell them nothing)."""
        ifaces = dict.fromkeys(iface for key, iface in peers
                               if (s := states.get(key)) is None or not lv.heard_at_once(s))
        return {i: rx for i in ifaces if (rx := self.iface_rx(i)) is not None}

    def settle(self, states: MutableMapping[PeerId, PeerState],
               peers: Sequence[tuple[PeerId, str]], rx: Mapping[str, int]) -> None:
        """Judge pending tests by interface counters where they are to be: a packet in
        since the test went out is its answer (the peer has the interface to itself)."""
        now = self.clock()
        for key, iface in peers:
            state = states.get(key)
            base = self.rx_at_kick.get(key)
            if state is None or not (lv.pending(state) and state.by_counters):
                continue
            if base is None:  # forgotten: WireGuard's own counters judge it
                states[key] = dataclasses.replace(state, by_counters=False)
            elif iface in rx and rx[iface] > base:
                states[key] = lv.counted(state, rx[iface] - base, now)
                if iface in self.rx_seen:  # the answer is no traffic of the peer's own
                    self.rx_seen[iface] += 1

    def read_due(self, states: Mapping[PeerId, PeerState],
                 peers: Sequence[tuple[PeerId, str]]) -> bool:
        """Whether this look needs a `wg show`: unless every peer has its interface to
        itself, answers tests at once, and has no test out that counters do not judge, or
        its answers are heard on the socket."""
        for key, iface in peers:
            state = states.get(key)
            if state is None or key not in self.targets:
                return True
            if lv.heard_at_once(state):
                continue  # its tests are heard on the socket, wherever it is
            if self.peers_on.get(iface) != 1 or not lv.prompt(state) \
                    or (lv.pending(state) and not state.by_counters) or iface not in self.rx_seen:
                return True
        return not peers

    def busy(self, states: MutableMapping[PeerId, PeerState],
             peers: Sequence[tuple[PeerId, str]], rx: Mapping[str, int], now: float) -> None:
        """A look without `wg show`: more packets in on a peer's interface than its
        answers are its own traffic, a sign of life up to the last look."""
        for key, iface in peers:
            if iface not in rx or self.peers_on.get(iface) != 1:
                continue  # a shared interface's packets may be any peer's
            if rx[iface] > self.rx_seen.get(iface, rx[iface]) and not lv.pending(states[key]):
                states[key] = lv.busy(states[key], self.seen_at)
            self.rx_seen[iface] = rx[iface]
        self.seen_at = now

    def watch(self, states: MutableMapping[PeerId, PeerState], skip: Collection[PeerId],
              now: float) -> None:
        """Traffic out with nothing back (liveness.sample) tests the interface's peers at
        once, not at the next cycle: a death under a running ping is found in seconds.
        Looks while traffic flows, else once a cycle; one read for all interfaces."""
        self.urgent = {k for k in self.urgent if k in states and lv.pending(states[k])}
        fresh = any(i not in self.flows for i, _ in self.targets.values())
        if now < self.sample_at and now < self.next_read - lv.SLACK and not fresh:
            return  # not a look of its own, nor the cycle's read: no wake-up of its own
        self.sample_at = math.inf
        if not self.targets:
            return
        counts, soon = self.packets(), []
        for iface in {i for i, _ in self.targets.values()}:
            if iface not in counts:
                self.flows.setdefault(iface, lv.Flow())  # looked for: not fresh any more
                continue
            rx, tx = counts[iface]
            tx -= self.own_out.get(iface, 0)  # test datagrams are no traffic of the user's
            flow, suspicious = lv.sample(self.flows.get(iface, lv.Flow()), tx, rx, now)
            self.flows[iface] = flow
            if (at := lv.next_sample(flow, now)) is not None:
                soon.append(at)
            for key, (i, target) in self.targets.items() if suspicious else ():
                state = states.get(key)
                if i != iface or key in skip or state is None or lv.pending(state) \
                        or now - self.triggered.get(key, -math.inf) < lv.TRIGGER_GAP:
                    continue
                log.debug("%s: packets out with nothing back; testing %s/%s now", iface,
                          key[1][:8], target)
                self.triggered[key] = now
                self.urgent.add(key)
                self._send(states, key, iface, target)
        self.sample_at = min(soon, default=math.inf)

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
        alone = self.peers_on.get(iface) == 1 and lv.prompt(states[key]) \
            and not states[key].heard
        base = self.rx_at_kick[key] = self.iface_rx(iface) if alone else None
        by_counters = base is not None
        if self.kick(iface, target):
            self.own_out[iface] = self.own_out.get(iface, 0) + 1
            states[key] = lv.kicked(states[key], self.clock(), by_counters)
            self.sent_to[key] = (iface, target)

    def note_untestable(self, key: PeerId, label: str, target: str | None) -> None:
        """Say once that a peer has no address a test datagram could go to."""
        if target is None and key not in self.untestable:
            self.untestable.add(key)
            log.info("%s: no tunnel address to test its path (set probe_address); judged "
                     "by handshakes and by traffic that gets no answer", label)

    def forget(self) -> None:
        """After a round: interfaces may have been re-created (counters restart) and peers
        added, so the next look reads `wg show` and starts the counters afresh."""
        self.peers_on.clear()
        self.rx_seen.clear()
        self.rx_at_kick.clear()

    def cancel(self, key: PeerId) -> None:
        self.planned.pop(key, None)

    def keep_only(self, keys: Collection[PeerId]) -> None:
        self.planned = {k: v for k, v in self.planned.items() if k in keys}
        self.sent_to = {k: v for k, v in self.sent_to.items() if k in keys}
        self.targets = {k: v for k, v in self.targets.items() if k in keys}
        self.triggered = {k: v for k, v in self.triggered.items() if k in keys}
        self.urgent &= set(keys)
        self.untestable &= set(keys)

    def next_due(self) -> float:
        return min((at for at, _, _ in self.planned.values()), default=math.inf)
