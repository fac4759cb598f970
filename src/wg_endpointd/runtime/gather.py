"""What a round starts from: each peer's WireGuard state as `wg` shows it, and its
candidates: DNS answers (or the last known ones while DNS is slow or failing), cleaned,
without addresses that can never be a remote endpoint or that this host has no route to
(for a peer with a fwmark, no route for packets carrying it), in Happy Eyeballs order.
No I/O of its own: the dumps, the resolver's answers, the host's addresses and the route
check are handed in."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence

from ..config import PeerConfig
from ..core import candidates as cand
from ..core.errors import ResolveError, ResolvePending, WgError, WgMissing, WgUnavailable
from ..core.model import Endpoint, IfAddress, InterfaceDump, PeerDump, ProbeResult
from ..core.outcome import Outcome, PeerId, peer_id

log = logging.getLogger("wg_endpointd.runtime.engine")
Answers = Mapping[str, "list[str] | ResolveError"]


def candidates(peers: Sequence[PeerConfig], resolved: Answers,
               known: MutableMapping[str, list[str]], own: Sequence[IfAddress],
               route_ok: Callable[[str, int], bool]) -> dict[PeerId, list[Endpoint]]:
    """Usable candidates per peer; `known` (last answers per name) is kept up to date.
    `route_ok(address, mark)` checks the route for packets carrying the peer's fwmark."""
    skip: dict[tuple[str, int], str] = {}  # (address, mark) -> why never tried ("" to try)
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
            key = (ep.address, peer.fwmark)
            if key not in skip:
                skip[key] = cand.bogus(ep.address, own) or (
                    "" if route_ok(*key) else "no route from this host")
            if skip[key]:
                log.debug("%s: %s skipped: %s", peer.label, ep.address, skip[key])
        eps = [e for e in eps if not skip[(e.address, peer.fwmark)]]
        out[peer_id(peer)] = cand.interleave(eps, cand.preferred_family(peer.family))
    return out


def snapshot(peers: Sequence[PeerConfig], dumps: Mapping[str, InterfaceDump | WgError]
             ) -> tuple[dict[PeerId, PeerDump], dict[PeerId, Outcome]]:
    """Each peer's current WireGuard state from its interface's dump, or an error outcome
    for it (its interface gone or unreadable, or the peer not on it)."""
    before: dict[PeerId, PeerDump] = {}
    errors: dict[PeerId, Outcome] = {}
    for peer in peers:
        dump = dumps[peer.interface]
        if isinstance(dump, WgMissing):
            errors[peer_id(peer)] = Outcome(peer, "absent", None, str(dump))
        elif isinstance(dump, WgUnavailable):  # nothing known: not judged down
            errors[peer_id(peer)] = Outcome(peer, "unavailable", None, str(dump))
        elif isinstance(dump, WgError):
            errors[peer_id(peer)] = Outcome(peer, "error", None, str(dump))
        elif peer.public_key not in dump.peers:
            errors[peer_id(peer)] = Outcome(
                peer, "error", None, f"peer {peer.public_key[:8]}… is not on {peer.interface}")
        else:
            before[peer_id(peer)] = dump.peers[peer.public_key]
    return before, errors


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
