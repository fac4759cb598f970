"""When to send a test datagram into a tunnel, when to read WireGuard's counters, and
when an unanswered datagram means the path is dead (state.py rules 2 and 6). Pure.

Every `wg show` costs a fork and an exec (about 10 ms of CPU on a MIPS router), so reads
are batched into one cycle for all peers, and test datagrams are timed so that their
verdicts fall on that cycle's next read:

- a peer that answers at once (an inner reply) gets its datagram `answer_wait` before
  the next read;
- a peer that answers only by WireGuard's passive keepalive (10 s after it received
  data) gets its datagram at a read, and the next read waits for its verdict when that is
  at most `MERGE` seconds later than `check_interval` would put it. Sending the next
  datagram at that same read means a path that dies at any moment has a datagram out
  whose answer it loses: found within one keepalive wait, about 6 s on average;
- a peer not learned yet gets one datagram at once and looks `FIRST_LOOKS` later; the
  first look that shows the answer bounds its delay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .state import DOWN, PeerState

KEEPALIVE_WAIT = 11.0  # passive keepalive: WireGuard answers data within 10 s (+1 s slack)
PROMPT = 2.0  # an answer faster than this was an inner reply, not the keepalive
FIRST_LOOKS = (0.1, 0.5)  # looks after a test datagram of a peer not learned yet
SLACK = 0.05  # a read this much early still judges (timer and loop jitter)
MERGE = 2.0  # postpone a read this much at most to give a pending verdict its read


def kicked(state: PeerState, now: float, by_counters: bool = False) -> PeerState:
    """A test datagram went into the tunnel (rules 2 and 6); `by_counters`: its answer
    is judged by the counters of the interface the peer has to itself."""
    return dataclasses.replace(state, last_kick=now, kick_rx=state.rx_bytes,
                               by_counters=by_counters)


def judged(state: PeerState) -> PeerState:
    """The pending test datagram led to a repair: it is not judged again, and the way the
    peer answers is learned afresh afterwards (it may have changed)."""
    return dataclasses.replace(state, kick_rx=-1, answer_delay=None, by_counters=False,
                               heard=False)


def prompt(state: PeerState) -> bool:
    """The peer answered a test datagram with an inner reply last time."""
    return state.answer_delay is not None and state.answer_delay < PROMPT


def heard_at_once(state: PeerState) -> bool:
    """Its tests are answered at once and heard on the sending socket: no counters, no
    `wg show` are needed to judge them."""
    return state.heard and prompt(state)


def answer_wait(state: PeerState) -> float:
    """How long a live peer takes to answer a test datagram (rule 6)."""
    d = state.answer_delay
    if d is None or d >= PROMPT:
        return KEEPALIVE_WAIT
    return max(FIRST_LOOKS[-1], 3 * d + 0.3)


def pending(state: PeerState) -> bool:
    return state.kick_rx >= 0 and state.last_kick is not None


def verdict_at(state: PeerState) -> float | None:
    """When the pending test datagram is judged (a read at or after this time)."""
    if not pending(state) or state.last_kick is None:
        return None
    return state.last_kick + answer_wait(state) - SLACK


def unanswered(state: PeerState, now: float) -> bool:
    """Rule 6: the pending test datagram got no answer in the time a live peer takes."""
    at = verdict_at(state)
    return at is not None and now >= at


def next_look(state: PeerState, now: float, next_read: float | None = None) -> float | None:
    """When to read the counters again for a pending test datagram: early looks for a
    peer not learned yet, then at the verdict; a prompt peer's verdict that falls before
    the cycle's next read waits for that read (its datagram went out with the others,
    `lead`), so that one wake-up judges them all."""
    at = verdict_at(state)
    if at is None or state.last_kick is None:
        return None
    if state.answer_delay is None:
        looks = [t for d in FIRST_LOOKS if now < (t := state.last_kick + d) < at]
        if looks:
            return looks[0]
    elif next_read is not None and prompt(state) and now < at <= next_read <= at + PROMPT:
        return next_read  # just before the read it was timed for; never a cycle later
    return at if now < at else None


def lead(states: Iterable[PeerState]) -> float:
    """How long before a read the prompt peers' datagrams go out: the longest wait among
    them, so that they all go out together (one wake-up for all, not one each)."""
    return max((answer_wait(s) for s in states if prompt(s)), default=0.0)


def plan_kick(state: PeerState, now: float, next_read: float, interval: float,
              ahead: float = 0.0) -> float | None:
    """When to send this peer's next test datagram, or None while one is pending. Every
    testable peer gets one per interval, traffic or not: received traffic proves only the
    past, and bytes sent with nothing back prove nothing (a death under a running ping
    was otherwise seen only by `dead_after`). A peer not tested yet gets one at once to
    learn how it answers. `ahead`: the lead all prompt peers share (`lead`)."""
    if pending(state):
        return None
    learning = state.last_kick is None and state.answer_delay is None
    at = max(now, next_read - max(ahead, answer_wait(state))) if prompt(state) else now
    if state.last_kick is not None and not learning:
        at = max(at, state.last_kick + interval)
    return at


def merged(states: Iterable[PeerState]) -> list[float]:
    """Pending verdicts worth stretching a cycle for: not those of peers already down,
    whose repair waits for its backoff anyway (a peer with 50 dead addresses would
    otherwise stretch every other peer's cycle)."""
    return [v for s in states if s.phase != DOWN and (v := verdict_at(s)) is not None]


def next_cycle(now: float, interval: float, verdicts: Iterable[float]) -> float:
    """The next cycle's read: `interval` from now, postponed by up to MERGE seconds when
    that lets a pending verdict be read by the same `wg show`."""
    base = now + interval
    return max([base, *(v for v in verdicts if base < v <= base + MERGE)])


def shown_alive(state: PeerState, now: float, dead_after: float) -> bool:
    """The daemon's own checks show the peer alive: a scheduled round need not ask it."""
    return (state.last_alive is not None and now - state.last_alive < dead_after
            and not unanswered(state, now) and state.phase != DOWN)


def counted(state: PeerState, packets: int, now: float, heard: bool = False) -> PeerState:
    """The pending test's answer showed in the counters of the interface the peer has to
    itself (`packets` came in since the test went out; more than one is traffic too, and
    says nothing about how fast the peer answers); `heard`: it was heard on the socket."""
    at = state.last_kick if state.last_kick is not None else now
    took = now - at  # an upper bound: when we looked
    delay = state.answer_delay
    if packets == 1 or delay is None:
        delay = took if delay is None else min(delay, took)
    return dataclasses.replace(state, kick_rx=-1, by_counters=False, answer_delay=delay,
                               last_alive=max(at, state.last_alive or at),
                               heard=heard or state.heard)


def heard(state: PeerState, at: float) -> PeerState:
    """The pending test's address answered on the sending socket at `at` (an inner reply,
    told apart from any traffic): its later tests are judged that way alone."""
    return counted(state, 1, at, heard=True)


def busy(state: PeerState, since: float) -> PeerState:
    """Packets came in on the interface the peer has to itself, with no test out, after
    `since` (the last look)."""
    return dataclasses.replace(state, last_alive=max(since, state.last_alive or since))


# -- traffic that gets no answer (issue 17): a reason to test at once ------------------

GROUP_LOOKS = 2  # looks a check_interval with a standby group: its failover is the point


def cycle(check_interval: float, groups: object) -> float:
    """The liveness cycle: check_interval, or a part of it when standby groups exist
    (their active member's silent death then costs half the wait; a group's interface
    is read every cycle anyway)."""
    return check_interval / GROUP_LOOKS if groups else check_interval


SAMPLE = 1.0  # while a tunnel carries traffic, its counters are looked at this often
UNANSWERED = 2  # packets out with nothing in ...
SPREAD = 3.0  # ... sent within this long (WireGuard's own keepalives come 5 s apart) ...
PATIENCE = 1.0  # ... the first of them this long ago (a round trip's slack)
TRIGGER_GAP = 5.0  # at most one test at once per peer this often
STARTS = 3  # packets out between two of the cycle's looks that make a tunnel "busy"


@dataclasses.dataclass(frozen=True, slots=True)
class Flow:
    """An interface's packet counters as last seen, and the traffic out since the last
    packet in."""

    tx: int = -1
    rx: int = -1
    base: int = -1  # tx when a packet last came in
    first_out: float | None = None  # when the first packet out since then was seen
    moving_at: float | None = None  # when packets last went out


def sample(flow: Flow, tx: int, rx: int, now: float) -> tuple[Flow, bool]:
    """Fold in a look at the counters; True when packets went out and nothing came back
    for long enough to test the interface's peers at once (bytes sent with nothing back
    are no sign of life; a ping running through a dead tunnel is one)."""
    if flow.tx < 0 or tx < flow.tx or rx < flow.rx:  # first look, or counters restarted
        return Flow(tx, rx, tx), False
    # traffic flows: STARTS packets out at least since a look a cycle ago (a stray packet
    # or two a cycle, as seen in the lab, is no traffic), then one at least a second
    grew = tx - flow.tx
    going = flow.moving_at is not None and now - flow.moving_at <= 2 * SAMPLE
    moving = now if grew >= STARTS or (grew > 0 and going) else flow.moving_at
    if rx > flow.rx:
        return Flow(tx, rx, tx, None, moving), False
    base, first = flow.base, flow.first_out
    if first is not None and now - first > SPREAD:
        base, first = flow.tx, None  # too spread out (keepalives, say): start again here
    if tx > base and first is None:
        first = now
    suspicious = first is not None and tx - base >= UNANSWERED and now - first >= PATIENCE
    if suspicious:
        base, first = tx, None  # one verdict per run of unanswered traffic
    return Flow(tx, rx, base, first, moving), suspicious


def next_sample(flow: Flow, now: float) -> float | None:
    """When to look at the counters again: soon while traffic flows, else never (the
    cycle's own wake-ups look)."""
    if flow.moving_at is not None and now - flow.moving_at < SAMPLE * 10:
        return now + SAMPLE
    return None
