"""One peer's switch under verification, and what the verifier needs of `wg` and of the
host routes (verify.py runs the jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config import PeerConfig
from ..core.model import Endpoint, InterfaceDump, PeerDump
from ..core.outcome import Outcome, PeerId
from ..system.wg import Reset


class WgLike(Protocol):
    def show(self, iface: str) -> InterfaceDump: ...
    def show_all(self) -> dict[str, InterfaceDump]: ...
    def reset(self, iface: str, resets: Sequence[Reset]) -> None: ...


class RoutesLike(Protocol):
    def ensure(self, key: PeerId, iface: str, address: str, probe: bool = False) -> bool: ...
    def end_probes(self, key: PeerId, keep: str | None) -> None: ...
    def retain(self, key: PeerId, keep: str | None) -> None: ...
    def keep_only(self, peers: set[PeerId]) -> None: ...
    def adopt(self) -> None: ...
    def prune_adopted(self) -> None: ...
    def clear(self) -> None: ...


@dataclass(slots=True)
class Job:
    """Verification of one peer, candidate after candidate."""

    peer: PeerConfig
    original: PeerDump  # as the round found it
    order: tuple[Endpoint, ...]
    reason: str
    unproven: Endpoint | None = None  # never verified, and the peer has no session
    index: int = 0
    deadline: float = 0.0
    started: float = 0.0
    tried_at: float = 0.0  # when the current candidate was set
    wait: float = 0.0  # how long the current candidate gets
    result: Outcome | None = None

    @property
    def trying(self) -> Endpoint:
        return self.order[self.index]


def changed(before: PeerDump, now: PeerDump | None) -> str | None:
    """Why a peer may no longer be touched, or None when it still is as the round found it."""
    if now is None:
        return "the peer was removed"
    if now.settings() != before.settings():
        names = ("preshared key", "allowed IPs", "keepalive")
        diff = [n for n, a, b in zip(names, before.settings(), now.settings(), strict=True)
                if a != b]
        return f"its {', '.join(diff)} changed"
    return None
