"""Per-peer daemon state and its transitions. Pure: times are passed in.

Rules:
1. `last_alive` is a lower bound: when WireGuard shows new bytes or a newer
   handshake at a check, life is dated to the previous check, so a dead path
   is declared at most `dead_after` after its last real sign of life.
2. A testable peer gets one test datagram per `check_interval`, traffic or not
   (liveness.py times them): traffic seen proves only the past, and bytes sent with
   nothing coming back are no sign of life at all.
3. A peer is dead after `dead_after` without life; repairs of a dead peer are
   spaced by exponential backoff with jitter, reset by any interface event.
4. A peer on a less preferred endpoint fails back only after a better
   candidate has been plausible for the hold time; a failed trial doubles the
   hold (up to `backoff_max` times 4). ICMP only argues against a candidate
   when it works on the current path: it ranks, it never vetoes.
6. A test datagram into the tunnel draws an answer from a live peer: at once when it
   provokes an inner reply (an echo or an ICMP error from the peer's tunnel address),
   else through WireGuard's passive keepalive within 10 s. How fast the peer answered
   sizes the wait; a test left unanswered that long means dead now, without waiting
   for `dead_after` (liveness.py).
5. A fault (wg failing, nothing verifying) is spaced by the same backoff and
   remembered, so it is logged when it starts, when it changes and when it
   ends, not on every attempt.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .model import Endpoint, PeerDump, ProbeResult

HEALTHY, DOWN, FALLBACK, UNKNOWN = "healthy", "down", "fallback", "unknown"
ANSWER_BYTES = 256  # rx growth up to this while a test datagram is out is its answer


@dataclass(frozen=True, slots=True)
class Switch:
    old: Endpoint | None
    new: Endpoint | None
    reason: str
    at: float  # wall clock


@dataclass(frozen=True, slots=True)
class PeerState:
    phase: str = UNKNOWN
    endpoint: Endpoint | None = None
    rx_bytes: int = -1
    handshake: int = -1
    last_check: float | None = None
    last_alive: float | None = None
    last_kick: float | None = None
    last_verified: float | None = None  # wall clock
    failures: int = 0
    next_repair: float = 0.0
    better_since: float | None = None
    hold: float = 0.0
    candidates: tuple[Endpoint, ...] = ()
    probes: tuple[ProbeResult, ...] = ()
    last_switch: Switch | None = None
    since: float | None = None  # wall clock: when the current endpoint was first seen
    tx_bytes: int = -1
    last_sent: float | None = None  # when tx last grew (something was sent to the peer)
    fault: str | None = None  # the fault being retried, for logging rule 5
    kick_rx: int = -1  # rx when the unanswered test datagram went out; -1: none pending
    answer_delay: float | None = None  # how fast the peer answers a test (rule 6)
    by_counters: bool = False  # the pending test is judged by its interface's counters
    heard: bool = False  # its answers are heard on the sending socket (tester.hear)


def observe(state: PeerState, dump: PeerDump, now: float,
            wall: float | None = None) -> PeerState:
    """Fold one `wg show` reading into the state (rule 1)."""
    moved = state.rx_bytes >= 0 and (dump.rx_bytes > state.rx_bytes
                                     or dump.latest_handshake > state.handshake)
    alive = state.last_alive
    if moved:
        seen = [t for t in (state.last_check, state.last_alive) if t is not None]
        alive = max(seen) if seen else now  # (last_alive may be newer: interface counters)
    elif alive is None:
        alive = now  # first sight: give the path a full window before judging it
    since = state.since
    if dump.endpoint != state.endpoint or since is None:
        since = wall
    sent = state.last_sent
    if state.tx_bytes >= 0 and dump.tx_bytes > state.tx_bytes:
        sent = now
    kick_rx, delay = state.kick_rx, state.answer_delay
    # rx since the last read may predate the test: a peer whose answers are heard on the
    # socket is judged by the socket alone
    answered = dump.rx_bytes > kick_rx and not state.by_counters and not state.heard
    if kick_rx >= 0 and (answered or dump.rx_bytes < state.rx_bytes):
        # how fast it answers is learned from an answer alone, never from traffic
        alone = dump.rx_bytes - kick_rx <= ANSWER_BYTES
        if answered and alone and state.last_kick is not None:
            took = now - state.last_kick  # an upper bound: when we looked
            delay = took if delay is None else min(delay, took)
        kick_rx = -1  # answered (or the peer was re-created: counters restarted)
    counters = state.by_counters and kick_rx >= 0
    return dataclasses.replace(state, endpoint=dump.endpoint, rx_bytes=dump.rx_bytes,
                               handshake=dump.latest_handshake, last_check=now,
                               last_alive=alive, since=since, tx_bytes=dump.tx_bytes,
                               last_sent=sent, kick_rx=kick_rx, answer_delay=delay,
                               by_counters=counters)


def is_dead(state: PeerState, now: float, dead_after: float, testable: bool = True) -> bool:
    """Rule 3. A peer the daemon cannot send a test datagram to (a full tunnel with no
    address to aim at) counts as dead only when traffic went to it and nothing came back
    for `dead_after`: an idle tunnel is never judged, so never churned."""
    if state.last_alive is None or now - state.last_alive < dead_after:
        return False
    return testable or (state.last_sent is not None and state.last_sent > state.last_alive)


def backoff(failures: int, base: float, ceiling: float, jitter: float) -> float:
    """Delay before repair attempt `failures`+1; `jitter` in [0, 1) spreads it by ±20 %."""
    delay = min(ceiling, base * (2 ** max(0, failures - 1)))
    return delay * (0.8 + 0.4 * jitter)


def verified(state: PeerState, endpoint: Endpoint | None, now: float, wall: float,
             phase: str) -> PeerState:
    """WireGuard showed `endpoint` working."""
    since = state.since if endpoint == state.endpoint and state.since is not None else wall
    return dataclasses.replace(state, phase=phase, endpoint=endpoint, last_alive=now,
                               last_verified=wall, failures=0, next_repair=0.0, fault=None,
                               since=since, kick_rx=-1)


def repair_failed(state: PeerState, now: float, delay: float,
                  fault: str | None = None) -> PeerState:
    """A repair did not work (rule 3), or a fault stopped it (rule 5)."""
    return dataclasses.replace(state, phase=DOWN, failures=state.failures + 1,
                               next_repair=now + delay, fault=fault)


def retry_soon(state: PeerState) -> PeerState:
    """The switch was dropped because the peer changed under it: look again at once."""
    return dataclasses.replace(state, next_repair=0.0)


def note_better(state: PeerState, plausible: bool, now: float) -> PeerState:
    """Track since when a better candidate has been plausible without a break (rule 4)."""
    if not plausible:
        return dataclasses.replace(state, better_since=None)
    since = now if state.better_since is None else state.better_since
    return dataclasses.replace(state, better_since=since)


def failback_due(state: PeerState, now: float, hold: float) -> bool:
    wait = max(hold, state.hold)
    return state.better_since is not None and now - state.better_since >= wait


def failback_failed(state: PeerState, hold: float, ceiling: float) -> PeerState:
    return dataclasses.replace(state, better_since=None,
                               hold=min(max(hold, state.hold) * 2, ceiling * 4))


def failback_plausible(better_answered: bool, current_answered: bool) -> bool:
    """Rule 4: a better candidate's ICMP silence counts against it only when ICMP
    works on the current path (so a peer that answers no ping, or a host without
    raw-socket permission, still fails back on WireGuard's verification alone)."""
    return better_answered or not current_answered


@dataclass(frozen=True, slots=True)
class Result:
    """What a round did to a peer, as the state machine needs it (from an Outcome)."""

    status: str
    endpoint: Endpoint | None
    detail: str
    before: Endpoint | None = None
    candidates: tuple[Endpoint, ...] = ()
    probes: Sequence[ProbeResult] = ()


LogLine = tuple[int, str]  # (logging level, message without the peer's label)


def settle(old: PeerState, res: Result, now: float, wall: float, fallback: bool,
           delay: float) -> tuple[PeerState, list[LogLine]]:
    """The state after a round's result, and the lines to log (rule 5: a fault when it
    starts or changes, its end, every switch). `fallback`: the new endpoint is not the
    preferred family; `delay`: the backoff before the next repair, if this one failed."""
    state = dataclasses.replace(old, candidates=res.candidates or old.candidates,
                                probes=tuple(res.probes) or old.probes)
    lines: list[LogLine] = []
    if res.status in ("healthy", "switched"):
        if old.fault is not None:
            lines.append((logging.INFO, f"working again on {res.endpoint}"))
        state = verified(state, res.endpoint, now, wall, FALLBACK if fallback else HEALTHY)
        if res.status == "switched":
            came_from = res.before or old.endpoint
            lines.append((logging.INFO, f"switched {came_from or '(none)'} -> {res.endpoint} "
                                        f"({res.detail})"))
            state = dataclasses.replace(state, last_switch=Switch(
                came_from, res.endpoint, res.detail, wall), better_since=None)
    elif res.status in ("failed", "error"):
        state = repair_failed(state, now, delay, res.detail)
        level = logging.WARNING if res.status == "failed" else logging.ERROR
        if old.fault == res.detail:
            level = logging.DEBUG
        lines.append((level, f"{res.detail}; retrying with backoff (next in {delay:.0f} s)"))
    elif res.status == "dropped":
        state = retry_soon(state)
    elif res.status == "unavailable":  # `wg` cannot run: nothing known, nothing judged
        if old.fault != res.detail:
            lines.append((logging.ERROR, f"{res.detail}; its state is unknown until wg runs"))
        state = dataclasses.replace(state, phase=UNKNOWN, fault=res.detail,
                                    next_repair=now + delay)
    elif res.status == "absent":  # netifd rebuilding it: its ifup wakes us, no error
        if old.fault != res.detail:
            lines.append((logging.INFO, f"{res.detail}; waiting for it to come back"))
        state = dataclasses.replace(retry_soon(state), fault=res.detail)
    return state, lines
