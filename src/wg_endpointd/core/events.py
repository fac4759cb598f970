"""What happened to a peer or a group, as values: the events that user hooks, the
history in the state file and the metrics' counters all come from. Pure.

Rules:
1. `switch`: a peer's endpoint changed, by the daemon (a verified switch, with its
   reason as one word of SWITCH_REASONS) or outside it (`external`: WireGuard roaming,
   netifd re-creating the interface, a `wg set` by hand).
2. `down`: a peer's phase became down (a repair found nothing that verifies, or `wg`
   failed); `up`: a down peer is healthy (or on a fallback) again. A switch that brings
   a peer back is two events, the switch first.
3. `failover`, `failback`: a standby group's allowed IPs moved to another member; FROM and
   TO are then the members' public keys, PUBLIC_KEY the member that became active.
4. An event carries public keys only, never a private or preshared key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Endpoint
from .specs import PeerConfig
from .state import DOWN, FALLBACK, HEALTHY, PeerState

SWITCH, FAILOVER, FAILBACK, PEER_DOWN, PEER_UP = "switch", "failover", "failback", "down", "up"
ACTIONS = (SWITCH, FAILOVER, FAILBACK, PEER_DOWN, PEER_UP)
# why a peer's endpoint changed (a metric label: few values, all known up front)
SWITCH_REASONS = ("failover", "failback", "reapply", "recheck", "external")
HISTORY = 20  # events kept per peer and per group


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # wall clock
    action: str  # one of ACTIONS
    interface: str
    public_key: str  # the peer; for a group event the member that became active
    description: str
    from_: str  # endpoints as `ip:port` or `[v6]:port`; members' public keys for groups
    to: str
    reason: str  # one word (see switch_reason, peer_events, group_event)
    took: float | None = None  # seconds: the switch, the move, or how long it was down
    group: str = ""  # the group's name, for failover and failback


def switch_reason(detail: str) -> str:
    """The word for why the daemon switched, from a switch's detail ("verified in 0.42 s;
    [2001:db8::2]:51820 not answering"); the texts are policy.py's and failback.py's."""
    why = detail.split("; ", 1)[-1]
    if why.startswith("failback"):
        return "failback"
    if why.endswith("not answering") or why == "no endpoint":
        return "failover"
    if why.startswith("re-applying"):
        return "reapply"
    if why.startswith(("liveness unknown", "standby check")):
        return "recheck"
    return "other"


def _text(endpoint: Endpoint | None) -> str:
    return "" if endpoint is None else str(endpoint)


def peer_events(peer: PeerConfig, old: PeerState, new: PeerState, wall: float,
                took: float | None = None, failed: bool = True,
                down_at: float | None = None) -> list[Event]:
    """The events between two states of one peer (rules 1 and 2). `took`: how long the
    switch took to verify; `failed`: a down peer's repair found nothing (else `wg` or the
    peer itself failed); `down_at`: when it went down, for an `up` event."""
    def event(at: float, action: str, was: Endpoint | None, now: Endpoint | None,
              reason: str, seconds: float | None = None) -> Event:
        return Event(at, action, peer.interface, peer.public_key, peer.description,
                     _text(was), _text(now), reason, seconds)

    out: list[Event] = []
    sw = new.last_switch
    reason = "recovered"
    if sw is not None and sw != old.last_switch:
        reason = switch_reason(sw.reason)
        out.append(event(sw.at, SWITCH, sw.old, sw.new, reason, took))
    elif None not in (old.endpoint, new.endpoint) and old.endpoint != new.endpoint:
        out.append(event(wall, SWITCH, old.endpoint, new.endpoint, "external"))
    if new.phase == DOWN and old.phase != DOWN:
        out.append(event(wall, PEER_DOWN, old.endpoint, new.endpoint,
                         "unreachable" if failed else "error"))
    elif old.phase == DOWN and new.phase in (HEALTHY, FALLBACK):
        out.append(event(wall, PEER_UP, old.endpoint, new.endpoint, reason,
                         None if down_at is None else max(0.0, wall - down_at)))
    return out


def group_event(name: str, interface: str, old: str | None, new: str, failback: bool,
                description: str, wall: float, took: float | None = None) -> Event:
    """A group's allowed IPs moved from member `old` to `new` (rule 3): a failover because
    the active member died, or a failback because the preferred one is healthy again."""
    return Event(wall, FAILBACK if failback else FAILOVER, interface, new, description,
                 old or "", new, "recovered" if failback else "dead", took, name)


def hook_env(ev: Event) -> dict[str, str]:
    """The facts a user hook gets in its environment; GROUP only for group events."""
    env = {"ACTION": ev.action, "INTERFACE": ev.interface, "PUBLIC_KEY": ev.public_key,
           "DESCRIPTION": ev.description, "FROM": ev.from_, "TO": ev.to,
           "REASON": ev.reason}
    if ev.group:
        env["GROUP"] = ev.group
    return env


def entry(ev: Event) -> dict[str, Any]:
    """One item of a `history` list in the state file."""
    return {"at": round(ev.at, 3), "action": ev.action, "from": ev.from_ or None,
            "to": ev.to or None, "reason": ev.reason,
            "took": None if ev.took is None else round(ev.took, 3)}


def remember(history: Sequence[Mapping[str, Any]], item: Mapping[str, Any]
             ) -> list[dict[str, Any]]:
    """`history` with `item` added: oldest first, the last HISTORY items only."""
    return [dict(x) for x in (*history, item)][-HISTORY:]


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None  # type: ignore[arg-type]


def restored(items: object) -> list[dict[str, Any]]:
    """A history read back from an earlier run's state file: well-formed items only,
    with the known fields only, the last HISTORY of them."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("action") not in ACTIONS \
                or _number(item.get("at")) is None:
            continue
        texts = {k: v if isinstance(v := item.get(k), str) else None
                 for k in ("from", "to", "reason")}
        out.append({"at": item["at"], "action": item["action"], **texts,
                    "took": _number(item.get("took"))})
    return out[-HISTORY:]


def last_at(history: Sequence[Mapping[str, Any]], action: str) -> float | None:
    """When the latest item of `action` happened, if any is kept."""
    return next((float(x["at"]) for x in reversed(history) if x.get("action") == action),
                None)
