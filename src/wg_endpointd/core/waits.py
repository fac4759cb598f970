"""Pure sizing of a round's waits, from what is known about a path.

Rules:
1. A kicked peer's answer (liveness) is waited for a few ICMP round trips of its current
   endpoint (else of its fastest candidate), else a few times the handshake time WireGuard
   showed when this peer last verified, and never longer than its probe timeout.
2. When nothing is known, a peer with a session (a handshake within REJECT_AFTER_TIME)
   gets SESSION_WAIT: a live peer answers a datagram within one round trip, and that
   covers round trips up to a geostationary satellite's, so a live session is not
   disturbed on a guess while a dead one does not hold up the round. A peer without one
   gets QUIET_WAIT: there is no session to lose, its current endpoint is still tried
   again when no other candidate verifies, and a live path answers a handshake fast.
   Never longer than the probe timeout.
3. ICMP echo replies are waited for only as long as some peer's liveness wait would last
   if nothing answered (its trials start then anyway), but at least PROBE_FLOOR after a
   slow resolution, and never longer than the probe timeout.
4. A candidate gets a few ICMP round trips, else a few times the peer's last handshake
   time, never less than MIN_WAIT; the full verify_timeout only when nothing is known.
5. An endpoint the daemon never verified, on a peer with no session (netifd just made the
   interface anew from UCI), gets QUIET_WAIT at most, as a sessionless peer's liveness
   does: there is no session to lose, and a live path answers a handshake fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .model import Endpoint, ProbeResult
from .policy import FRESH_HANDSHAKE

MIN_WAIT = 0.5  # the shortest verification wait, however fast the path looked
LIVENESS_FLOOR = 0.2  # the shortest liveness wait
QUIET_WAIT = 0.5  # liveness wait of a peer with no session when nothing is known
SESSION_WAIT = 0.6  # liveness wait of a peer with a session when nothing is known
PROBE_FLOOR = 0.25  # ICMP gets at least this long, even after a slow resolution


def has_session(handshake_age: float | None) -> bool:
    """True when WireGuard still holds keys from the last handshake (rule 2)."""
    return handshake_age is not None and handshake_age < FRESH_HANDSHAKE


def liveness_window(rtts_ms: Iterable[float | None], learned: float | None, session: bool,
                    ceiling: float) -> float:
    """Seconds a kicked peer gets to show life (rules 1 and 2). `rtts_ms` are the ICMP
    round trips that size it (the current endpoint's, else the candidates'), `learned`
    the seconds the peer's last verified switch took."""
    known = [r for r in rtts_ms if r is not None]
    if known:
        return min(ceiling, max(LIVENESS_FLOOR, 4 * min(known) / 1000 + 0.1))
    if learned is not None:
        return min(ceiling, max(LIVENESS_FLOOR, 2 * learned + 0.1))
    return min(ceiling, SESSION_WAIT if session else QUIET_WAIT)


def sizing_rtts(current: Endpoint | None, candidates: Sequence[Endpoint],
                probes: Mapping[str, ProbeResult]) -> list[float | None]:
    """The round trips that size a liveness wait: the current endpoint's when it answered
    ping (the test datagram travels its path), else those of all the peer's candidates."""
    mine = probes.get(current.address) if current is not None else None
    if mine is not None and mine.answered:
        return [mine.rtt_ms]
    return [probes[e.address].rtt_ms for e in candidates if e.address in probes]


def probe_budget(quiet_windows: Iterable[float], elapsed: float, ceiling: float) -> float:
    """Seconds to wait for ICMP echo replies (rule 3): `quiet_windows` are the liveness
    waits the peers get when no reply comes, `elapsed` the time since they were kicked."""
    longest = max(quiet_windows, default=0.0)
    return min(ceiling, max(PROBE_FLOOR, longest - elapsed))


def verify_wait(rtt_ms: float | None, learned: float | None, full: float,
                unproven: bool = False) -> float:
    """Seconds a candidate gets to verify (rule 4); `unproven`: rule 5."""
    guide = rtt_ms / 1000 if rtt_ms is not None else learned
    wait = full if guide is None else min(full, max(MIN_WAIT, 4 * guide + 0.2))
    return min(wait, QUIET_WAIT) if unproven else wait
