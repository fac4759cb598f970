"""What one round did to one peer, and how peers are identified.

A peer is (interface, public key) everywhere: the same key may sit on several
WireGuard interfaces (one tunnel per uplink to the same server).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import Endpoint, ProbeResult
from .specs import PeerConfig

PeerId = tuple[str, str]  # (interface, public key)

# healthy | switched: the peer ends on a working endpoint.
# failed: nothing verified; the original endpoint was put back.
# error: wg failed or the peer is missing.
# absent: the interface is not there (netifd may be re-creating it).
# dropped: the user or netifd changed the peer mid-switch; it was left as they made it.
# interrupted: the daemon is stopping; nothing more was changed.
# untested: no address to test an idle path, and no sign of trouble: left alone.
# would-switch: --dry-run.
OK_STATUSES = ("healthy", "switched")


def peer_id(peer: PeerConfig) -> PeerId:
    return (peer.interface, peer.public_key)


@dataclass(frozen=True, slots=True)
class Outcome:
    peer: PeerConfig
    status: str
    endpoint: Endpoint | None
    detail: str
    candidates: tuple[Endpoint, ...] = ()
    probes: Mapping[str, ProbeResult] = field(default_factory=dict)
    before: Endpoint | None = None  # what the interface had just before a switch
    took: float | None = None  # seconds the verification took (a verified try)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES
