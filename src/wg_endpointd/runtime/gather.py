"""A round's candidates: DNS answers (or the last known ones while DNS is slow or
failing), cleaned, without addresses that can never be a remote endpoint or that this
host has no route to, in Happy Eyeballs order. No I/O of its own: the resolver's
answers, the host's addresses and the route check are handed in."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence

from ..config import PeerConfig
from ..core import candidates as cand
from ..core.errors import ResolveError, ResolvePending
from ..core.model import Endpoint, IfAddress, ProbeResult
from ..core.outcome import Outcome, PeerId, peer_id

log = logging.getLogger("wg_endpointd.runtime.engine")
Answers = Mapping[str, "list[str] | ResolveError"]


def candidates(peers: Sequence[PeerConfig], resolved: Answers,
               known: MutableMapping[str, list[str]], own: Sequence[IfAddress],
               route_ok: Callable[[str], bool]) -> dict[PeerId, list[Endpoint]]:
    """Usable candidates per peer; `known` (last answers per name) is kept up to date."""
    skip: dict[str, str] = {}  # address -> why it is never tried ("" to try it)
    out: dict[PeerId, list[Endpoint]] = {}
    for peer in peers:
        eps: list[Endpoint] = []
        for spec in peer.hosts:
            found = resolved.get(spec.host, [])
            if isinstance(found, ResolveError):
                level = logging.DEBUG if isinstance(found, ResolvePending) else logging.WARNING
                last = known.get(spec.host, [])
                log.log(level, "%s: %s; %s", peer.label, found,
                        "using last known addresses" if last else "no candidates")
                found = last
            else:
                known[spec.host] = found
            eps += [Endpoint(a, spec.port) for a in found]
        eps = cand.clean(eps)
        for ep in eps:
            if ep.address not in skip:
                skip[ep.address] = cand.bogus(ep.address, own) or (
                    "" if route_ok(ep.address) else "no route from this host")
            if skip[ep.address]:
                log.debug("%s: %s skipped: %s", peer.label, ep.address, skip[ep.address])
        eps = [e for e in eps if not skip[e.address]]
        out[peer_id(peer)] = cand.interleave(eps, cand.preferred_family(peer.family))
    return out


def with_hints(out: Outcome, eps: Sequence[Endpoint],
                probes: Mapping[str, ProbeResult]) -> Outcome:
    """Attach the peer's candidates and their ICMP results (for state and status)."""
    seen = {e.address: probes[e.address] for e in eps if e.address in probes}
    return dataclasses.replace(out, candidates=tuple(eps), probes=seen)


def rtt_text(probe: ProbeResult | None) -> str:
    """A candidate's ping as logged."""
    if probe is None or probe.rtt_ms is None:
        return "no ping reply"
    return f"{probe.rtt_ms:.1f} ms"
