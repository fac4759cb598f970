"""Pure decisions: given what was observed about a peer, keep it or try candidates.

Rules:
1. A peer whose current path WireGuard has shown alive is kept, whatever the order.
2. Otherwise candidates are tried in rank order: ICMP-answered before silent
   (a hint, never a veto), then the preferred family, then lower RTT, then
   the Happy Eyeballs order.
3. When liveness cannot be tested, the current endpoint is tried first; when it was
   just shown dead and answers no ping either, it is tried last. (A test datagram's
   answer can be lost, e.g. to ICMP rate limits; a current endpoint that still answers
   ping keeps its rank, and the short, RTT-sized wait makes re-trying it cheap.)
4. The caller restores the original endpoint if no candidate verifies, so a
   peer is never left worse off.
5. A peer on the family it does not prefer may fail back to preferred
   candidates ranked ahead of its endpoint (`better`); the daemon decides when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .model import Endpoint, ProbeResult


@dataclass(frozen=True, slots=True)
class Keep:
    reason: str
    status: str | None = None  # set when the keep itself says how the peer is


@dataclass(frozen=True, slots=True)
class Try:
    order: tuple[Endpoint, ...]
    reason: str


Decision = Keep | Try


def rank(candidates: Sequence[Endpoint], probes: Mapping[str, ProbeResult],
         prefer: int) -> list[Endpoint]:
    """Order candidates for verification (rule 2)."""

    def key(item: tuple[int, Endpoint]) -> tuple[int, int, float, int]:
        index, ep = item
        probe = probes.get(ep.address)
        if probe is None or probe.rtt_ms is None:
            return (1, 0, 0.0, index)
        return (0, 0 if ep.family == prefer else 1, probe.rtt_ms, index)

    return [ep for _, ep in sorted(enumerate(candidates), key=key)]


def decide(current: Endpoint | None, alive: bool, candidates: Sequence[Endpoint],
           probes: Mapping[str, ProbeResult], prefer: int, unknown: bool = False) -> Decision:
    """Keep a proven path; otherwise the candidates to try, best first.

    `unknown` means liveness could not be tested (no address to send into the
    tunnel); the current endpoint, if still a candidate, is then tried first.
    """
    if alive:
        return Keep("path alive")
    if not candidates:
        return Keep("no usable candidates")
    order = rank(candidates, probes, prefer)
    if unknown and current in order:
        order.remove(current)
        order.insert(0, current)
        return Try(tuple(order), "liveness unknown, checking current endpoint first")
    silent = current is not None and (probes.get(current.address) is None
                                      or probes[current.address].rtt_ms is None)
    if current in order and silent:  # shown dead and no ping reply either: others first,
        order.remove(current)  # itself last (a peer that restarted and lost its session
        order.append(current)  # still gets it back)
    why = "no endpoint" if current is None else f"{current} not answering"
    return Try(tuple(order), why)


def better(current: Endpoint | None, candidates: Sequence[Endpoint],
           prefer: int) -> list[Endpoint]:
    """Preferred-family candidates ahead of a current endpoint of the other family."""
    if current is None or current not in candidates or current.family == prefer:
        return []
    ahead = candidates[:list(candidates).index(current)]
    return [c for c in ahead if c.family == prefer]


def reapply(decision: Try, known: Endpoint, iface: str,
            probes: Mapping[str, ProbeResult]) -> Try:
    """netifd re-created the peer from UCI: the endpoint verified before goes first,
    unless it answers no ping while another candidate does (the event that made netifd
    re-create the interface may be its path going away); rank then decides (rule 2)."""
    def answered(ep: Endpoint) -> bool:
        probe = probes.get(ep.address)
        return probe is not None and probe.rtt_ms is not None

    if not answered(known) and any(answered(e) for e in decision.order):
        return decision
    rest = [e for e in decision.order if e != known]
    return Try((known, *rest), f"re-applying {known} after {iface} was re-created")


FRESH_HANDSHAKE = 180.0  # WireGuard's REJECT_AFTER_TIME: a session this young is in use


def untestable(decision: Try, handshake_age: float | None, leave_idle: bool) -> Decision:
    """A peer with no address to send a test datagram to. After an event, or when the
    daemon saw traffic go unanswered, it is tested by switching (`decision`). On a
    scheduled check with no such sign it is left alone: a recent handshake shows the
    session in use, and an idle path is not reset just to find out."""
    if not leave_idle:
        return decision
    if handshake_age is not None and handshake_age < FRESH_HANDSHAKE:
        return Keep(f"handshake {handshake_age:.0f} s ago", "healthy")
    return Keep("no address to test an idle path; left alone", "untested")


MAX_TRIES = 4  # candidates one peer tries in a round (its share of the round's time)


def capped(decision: Try, probes: Mapping[str, ProbeResult], offset: int,
           cap: int = MAX_TRIES) -> tuple[Try, int]:
    """At most `cap` candidates in a round (a name with 50 dead addresses would hold the
    round for 50 verification waits): the decision's first, then those that answered
    ping in rank order, then the silent ones in turn from `offset`, so that over rounds
    each gets its try. Returns the decision and the next round's offset."""
    if len(decision.order) <= cap:
        return decision, 0
    first, rest = decision.order[0], decision.order[1:]
    answered = [e for e in rest if (p := probes.get(e.address)) is not None and p.answered]
    silent = [e for e in rest if e not in answered]
    take = [first, *answered[:cap - 1]]
    room = min(cap - len(take), len(silent))
    start = offset % len(silent) if silent else 0
    take += [silent[(start + i) % len(silent)] for i in range(room)]
    return Try(tuple(take), decision.reason), start + room
