"""Failback: peers on a fallback endpoint return to a better (preferred-family) candidate
after it has been plausible for the hold time (state.py rule 4), verified through
WireGuard like any switch, and reverted when it does not verify."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, MutableMapping, Sequence

from ..config import PeerConfig
from ..core import candidates as cand
from ..core import policy
from ..core import state as st
from ..core.model import Endpoint
from ..core.options import Settings
from ..core.outcome import Outcome, PeerId, peer_id
from .engine import Engine

log = logging.getLogger("wg_endpointd.runtime.daemon")


def better(peer: PeerConfig, endpoint: Endpoint | None,
           candidates: Sequence[Endpoint]) -> list[Endpoint]:
    return policy.better(endpoint, candidates, cand.preferred_family(peer.family))


def run(peers: Sequence[PeerConfig], states: MutableMapping[PeerId, st.PeerState],
        settings: Settings, engine: Engine, now: float,
        try_better: Callable[[PeerConfig, list[Endpoint]], None]) -> None:
    """Probe better candidates of peers on a fallback; after the hold time hand the best
    ones (policy.MAX_TRIES at most) to `try_better`, which switches beside the loop and ends
    in `done`."""
    def state(p: PeerConfig) -> st.PeerState:
        return states.setdefault(peer_id(p), st.PeerState())

    todo = [(p, better(p, state(p).endpoint, state(p).candidates))
            for p in peers if state(p).phase == st.FALLBACK]
    todo = [(p, b) for p, b in todo if b]
    if not todo:
        return
    # a full tunnel's candidates are pinged through the uplink, never through the tunnel;
    # their host routes stay until the peer's next round or switch. One that no route can
    # take out of the tunnel cannot carry it: no failback to it.
    groups = [engine.verifier.outside(p, b, probe=False) for p, b in todo]
    todo = [(p, [c for c in b if c.address not in engine.verifier.no_way_out])
            for p, b in todo]
    on = [(p, ep) for p, _ in todo if (ep := state(p).endpoint)]
    groups += [engine.verifier.outside(p, [ep], probe=False) for p, ep in on]
    marks = [p.fwmark for p, _ in todo] + [p.fwmark for p, _ in on]  # wg-quick full tunnels
    probes = engine.probe_hint(groups, max(p.probe_timeout for p, _ in todo), marks)

    def answered(address: str | None) -> bool:
        return address is not None and address in probes and probes[address].answered

    for peer, ahead in todo:
        if not ahead:
            continue
        current = state(peer).endpoint
        plausible = st.failback_plausible(any(answered(c.address) for c in ahead),
                                          answered(current.address if current else None))
        new = states[peer_id(peer)] = st.note_better(state(peer), plausible, now)
        if not st.failback_due(new, now, settings.failback_hold):
            continue
        log.info("%s: trying preferred %s after %.0f s", peer.label, ahead[0],
                 now - (new.better_since or now))
        try_better(peer, ahead[:policy.MAX_TRIES])


def done(out: Outcome, state: st.PeerState, settings: Settings,
         apply: Callable[[Outcome], None]) -> st.PeerState | None:
    """A failback try ended: a verified switch is applied; otherwise the peer stays where
    it is, and the returned state waits longer before the next try."""
    if out.status == "switched":
        apply(dataclasses.replace(out, candidates=state.candidates))
        return None
    log.info("%s: failback not verified, staying on %s", out.peer.label, state.endpoint)
    return st.failback_failed(state, settings.failback_hold, settings.backoff_max)
