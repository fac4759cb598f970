"""The state file's content (`state.json`), built from configuration and peer states.

Pure: the daemon passes in its peers, their states and the clocks. The file
never holds a private or preshared key. docs/state-file.md describes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import PeerConfig
from ..config.groupconf import GroupConfig
from ..core import groups as gp
from ..core import state as st
from ..core.outcome import PeerId, peer_id

VERSION = 1


def _endpoint(value: object | None) -> str | None:
    return None if value is None else str(value)


def _rtt(state: st.PeerState, address: str) -> float | None:
    for probe in state.probes:
        if probe.address == address:
            return None if probe.rtt_ms is None else round(probe.rtt_ms, 2)
    return None


def peer_entry(peer: PeerConfig, s: st.PeerState,
               history: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    sw = s.last_switch
    return {
        "interface": peer.interface, "public_key": peer.public_key,
        "description": peer.description, "managed": True, "phase": s.phase,
        "endpoint": _endpoint(s.endpoint), "endpoint_since": s.since,
        "last_verified": s.last_verified, "fault": s.fault, "failures": s.failures,
        "candidates": [{"endpoint": str(c), "rtt_ms": _rtt(s, c.address),
                        "answered": _rtt(s, c.address) is not None,
                        "active": c == s.endpoint}
                       for c in s.candidates],
        "last_switch": None if sw is None else {
            "from": _endpoint(sw.old), "to": _endpoint(sw.new), "reason": sw.reason,
            "at": sw.at},
        "history": [dict(x) for x in history],
    }


def groups(configs: Sequence[GroupConfig], states: Mapping[str, gp.GroupState],
           peers: Sequence[PeerConfig],
           history: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
           ) -> list[dict[str, Any]]:
    """`groups[]` of the state file (docs/state-file.md)."""
    names = {peer_id(p): p.description for p in peers}
    out = []
    for group in configs:
        s = states.get(group.name) or gp.start(group)
        fo = s.last_failover
        out.append({
            "name": group.name, "interface": group.interface, "active": s.active,
            "allowed_ips": list(group.allowed_ips),
            "members": [{"public_key": k, "description": names.get((group.interface, k), ""),
                         "health": s.member(k).health,
                         "latest_handshake": s.member(k).latest_handshake}
                        for k in group.members],
            "last_failover": None if fo is None else {
                "from": fo.old, "to": fo.new, "reason": fo.reason, "at": fo.at},
            "history": [dict(x) for x in (history or {}).get(group.name, ())],
        })
    return out


def build(peers: Sequence[PeerConfig], states: Mapping[PeerId, st.PeerState], pid: int,
          unmanaged: Sequence[PeerConfig] = (),
          last_round: Mapping[str, object] | None = None,
          group_entries: Sequence[Mapping[str, Any]] = (),
          history: Mapping[PeerId, Sequence[Mapping[str, Any]]] | None = None
          ) -> dict[str, Any]:
    """The whole file; `written_at` is added by the writer so that equal content is
    not rewritten. `history`: each peer's last events, oldest first (fleet.py)."""
    entries = [peer_entry(p, states.get(peer_id(p), st.PeerState()),
                          (history or {}).get(peer_id(p), ())) for p in peers]
    entries += [{"interface": p.interface, "public_key": p.public_key,
                 "description": p.description, "managed": False, "reason": p.reason,
                 "phase": "unmanaged", "endpoint": None, "candidates": [],
                 "last_switch": None} for p in unmanaged]
    return {"version": VERSION, "pid": pid, "peers": entries,
            "last_round": dict(last_round) if last_round else None,
            "groups": [dict(g) for g in group_entries]}
