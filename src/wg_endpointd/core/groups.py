"""Standby groups: which member holds the group's allowed IPs, and when that changes.
Pure: observations and times are passed in.

Rules:
1. Exactly one member, the active one, holds the group's allowed IPs; the others
   keep only what is theirs alone. `plan` gives the allowed IPs of every member
   that must change, for one `wg set`; a member's own allowed IPs are never taken.
2. A member that is not active proves its health by a handshake (no allowed IPs
   are needed for that): one WireGuard made on its own (a member with a persistent
   keepalive), seen at each read, or one a check provoked. A dead member is checked
   again after backoff, and its return is seen at the first read after it handshook.
3. Failover: when the active member is dead and none of its own candidates
   verifies, the first member in list order whose handshake verifies becomes
   active (`pick`).
4. Failback: a member ahead of the active one that has handshaken without a break
   for the hold time becomes active again (`failback_to`); a failed trial doubles
   the hold, up to `backoff_max` times 4.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from .specs import GroupConfig, normalise

ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"


@dataclass(frozen=True, slots=True)
class Member:
    health: str = UNKNOWN
    latest_handshake: float | None = None  # wall clock, from `wg show`
    checked: float | None = None  # when the last check ended
    alive_since: float | None = None  # handshakes without a break since then
    failures: int = 0
    next_check: float = 0.0


@dataclass(frozen=True, slots=True)
class Failover:
    old: str | None
    new: str
    reason: str
    at: float  # wall clock


@dataclass(frozen=True, slots=True)
class GroupState:
    active: str
    members: Mapping[str, Member] = field(default_factory=dict)
    last_failover: Failover | None = None
    hold: float = 0.0  # grows after a failed failback (rule 4)

    def member(self, key: str) -> Member:
        return self.members.get(key, Member())


def start(group: GroupConfig) -> GroupState:
    """A new group starts with its preferred member active."""
    return GroupState(active=group.members[0])


def _with(state: GroupState, key: str, member: Member) -> GroupState:
    return dataclasses.replace(state, members={**state.members, key: member})


def checked(state: GroupState, key: str, alive: bool, now: float, delay: float,
            handshake: float | None = None, since: float | None = None) -> GroupState:
    """A handshake check of `key` ended (rule 2); `delay` is the backoff when dead;
    `since`: when it was alive first, if before `now` (its handshake)."""
    old = state.member(key)
    seen = handshake if handshake else old.latest_handshake
    if alive:
        since = old.alive_since if old.alive_since is not None else min(since or now, now)
        new = Member(ALIVE, seen, now, since, 0, 0.0)
    else:
        new = Member(DEAD, seen, now, None, old.failures + 1, now + delay)
    return _with(state, key, new)


def observed(state: GroupState, key: str, handshake: float | None, alive: bool | None
             ) -> GroupState:
    """What the daemon saw of the active member between checks (no check of its own)."""
    old = state.member(key)
    health = old.health if alive is None else (ALIVE if alive else DEAD)
    return _with(state, key, dataclasses.replace(
        old, health=health, latest_handshake=handshake or old.latest_handshake))


HANDSHAKE_FRESH = 135.0  # REKEY_AFTER_TIME (120 s) + REKEY_TIMEOUT (5 s) + slack


def handshook(member: Member, handshake: float | None, wall: float) -> bool:
    """Rule 2: the member handshook on its own (its persistent keepalive makes WireGuard
    do so): alive without a check of ours. A member found dead needs a handshake newer
    than the last one seen; any other, a recent one (a live session rekeys every 2 min)."""
    if handshake is None or wall - handshake >= HANDSHAKE_FRESH:
        return False
    if member.health == DEAD:
        return member.latest_handshake is None or handshake > member.latest_handshake
    return True


def checks_due(group: GroupConfig, state: GroupState, now: float, interval: float
               ) -> list[str]:
    """Members that are not active and are due a handshake check (rule 2)."""
    due = []
    for key in group.members:
        m = state.member(key)
        if key == state.active:
            continue
        if m.health == DEAD and now < m.next_check:
            continue
        if m.checked is None or now - m.checked >= interval:
            due.append(key)
    return due


def pick(group: GroupConfig, state: GroupState, verified: Collection[str]) -> str | None:
    """Rule 3: the first member in list order, not the active one, that verified."""
    return next((k for k in group.members if k != state.active and k in verified), None)


def _alive_ahead(group: GroupConfig, state: GroupState) -> list[tuple[str, float]]:
    """The members ahead of the active one that are alive, with since when (rule 4)."""
    ahead = group.members[:group.members.index(state.active)] \
        if state.active in group.members else group.members
    return [(k, since) for k in ahead if (since := state.member(k).alive_since) is not None]


def failback_to(group: GroupConfig, state: GroupState, now: float) -> str | None:
    """Rule 4: the first member ahead of the active one alive for the hold time."""
    wait = max(group.failback_hold, state.hold)
    return next((k for k, since in _alive_ahead(group, state) if now - since >= wait), None)


def failback_due(group: GroupConfig, state: GroupState) -> float | None:
    """Rule 4: when the next member ahead of the active one will have been alive for the
    hold time (None: no member ahead is alive)."""
    wait = max(group.failback_hold, state.hold)
    return min((since + wait for _, since in _alive_ahead(group, state)), default=None)


def moved(state: GroupState, new: str, reason: str, wall: float) -> GroupState:
    """The allowed IPs moved to `new` and traffic flows through it."""
    return dataclasses.replace(state, active=new,
                               last_failover=Failover(state.active, new, reason, wall))


def failback_failed(state: GroupState, key: str, hold: float, ceiling: float) -> GroupState:
    """Rule 4: traffic did not flow through `key`; it must prove itself again."""
    old = state.member(key)
    state = _with(state, key, dataclasses.replace(old, alive_since=None))
    return dataclasses.replace(state, hold=min(max(hold, state.hold) * 2, ceiling * 4))


# -- allowed IPs (rule 1) ------------------------------------------------------

def _norm(items: Sequence[str]) -> list[str]:
    out = []
    for item in items:
        try:
            out.append(normalise(item))
        except ValueError:
            out.append(item)
    return out


def own(group: GroupConfig, allowed: Sequence[str]) -> tuple[str, ...]:
    """A member's allowed IPs without the group's: what is its alone."""
    moving = set(group.allowed_ips)
    return tuple(a for a in dict.fromkeys(_norm(allowed)) if a not in moving)


def holders(group: GroupConfig, current: Mapping[str, Sequence[str]]) -> list[str]:
    """Members holding any of the group's allowed IPs, in list order."""
    moving = set(group.allowed_ips)
    return [k for k in group.members if moving & set(_norm(current.get(k, ())))]


def plan(group: GroupConfig, active: str, current: Mapping[str, Sequence[str]]
         ) -> list[tuple[str, tuple[str, ...]]]:
    """(member, its new allowed IPs) for each member that must change; the active
    one first, so the allowed IPs move in the same `wg set` that strips the others."""
    changes = []
    for key in [active, *[k for k in group.members if k != active]]:
        have = current.get(key, ())
        mine = own(group, have)
        want = (*mine, *group.allowed_ips) if key == active else mine
        if set(_norm(have)) != set(want):
            changes.append((key, want))
    return changes
