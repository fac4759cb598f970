"""The pure group policy (groups.py): which member holds the allowed IPs, and when that changes."""

import itertools

import pytest

from wg_endpointd.config.groupconf import GroupConfig
from wg_endpointd.core import groups as gp

A, B, C = "A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "="
GROUP = GroupConfig("vpn", "wg0", (A, B, C), ("0.0.0.0/0", "::/0"), failback_hold=300)
OWN = {A: ("10.1.0.0/24",), B: (), C: ("10.3.0.1/32", "fd00::3/128")}


def apply_wg_set(current, changes):
    """WireGuard's semantics: a peer's allowed IPs are replaced, and an allowed IP given
    to one peer leaves every other peer."""
    current = {k: list(v) for k, v in current.items()}
    for key, ips in changes:
        for other in current:
            if other != key:
                current[other] = [a for a in current[other] if a not in ips]
        current[key] = list(ips)
    return current


@pytest.mark.parametrize("holders", [(), (A,), (C,), (A, C), (A, B, C)])
@pytest.mark.parametrize("active", [A, B, C])
def test_plan_leaves_exactly_one_holder_and_every_own_ip(holders, active):
    current = {k: (*OWN[k], *(GROUP.allowed_ips if k in holders else ())) for k in OWN}
    changes = gp.plan(GROUP, active, current)
    after = apply_wg_set(current, changes)
    assert gp.holders(GROUP, after) == [active]
    for key in OWN:
        assert set(OWN[key]) <= set(after[key])
        extra = set(after[key]) - set(OWN[key])
        assert extra == (set(GROUP.allowed_ips) if key == active else set())
    assert gp.plan(GROUP, active, after) == []  # nothing left to do


def test_plan_orders_the_new_holder_first_and_skips_members_already_right():
    current = {A: (*OWN[A],), B: (), C: (*OWN[C], "0.0.0.0/0", "::/0")}
    changes = gp.plan(GROUP, A, current)
    assert [k for k, _ in changes] == [A, C]
    assert changes[0][1] == ("10.1.0.0/24", "0.0.0.0/0", "::/0")
    assert changes[1][1] == OWN[C]


def test_plan_compares_prefixes_as_wireguard_prints_them():
    group = GroupConfig("g", "wg0", (A, B), ("198.51.100.129/32",), 300)
    current = {A: ("198.51.100.129/32",), B: ()}
    assert gp.plan(group, A, current) == []
    assert gp.own(group, ["10.0.0.1/24", "198.51.100.129/32"]) == ("10.0.0.0/24",)


def test_pick_takes_the_first_verified_member_in_list_order():
    state = gp.GroupState(active=A)
    assert gp.pick(GROUP, state, {C, B}) == B
    assert gp.pick(GROUP, state, {C}) == C
    assert gp.pick(GROUP, state, {A}) is None  # the active one is not a failover target
    assert gp.pick(GROUP, state, set()) is None


def test_failback_only_after_an_unbroken_hold_and_only_to_members_ahead():
    state = gp.GroupState(active=B)
    state = gp.checked(state, A, True, now=100, delay=10)
    assert gp.failback_to(GROUP, state, 399) is None
    assert gp.failback_to(GROUP, state, 400) == A
    broken = gp.checked(state, A, False, now=350, delay=10)
    assert gp.failback_to(GROUP, broken, 1000) is None
    again = gp.checked(broken, A, True, now=360, delay=10)
    assert gp.failback_to(GROUP, again, 659) is None and gp.failback_to(GROUP, again, 660) == A
    behind = gp.checked(gp.GroupState(active=B), C, True, now=0, delay=10)
    assert gp.failback_to(GROUP, behind, 10_000) is None  # C is not preferred over B


def test_failed_failback_doubles_the_hold_up_to_a_ceiling():
    state = gp.checked(gp.GroupState(active=B), A, True, now=0, delay=10)
    state = gp.failback_failed(state, A, hold=300, ceiling=300)
    assert state.hold == 600 and state.member(A).alive_since is None
    for _ in range(5):
        state = gp.failback_failed(state, A, hold=300, ceiling=300)
    assert state.hold == 1200
    state = gp.checked(state, A, True, now=1000, delay=10)
    assert gp.failback_to(GROUP, state, 1000 + 1199) is None
    assert gp.failback_to(GROUP, state, 1000 + 1200) == A


def test_checks_due_skip_the_active_and_dead_members_in_backoff():
    state = gp.GroupState(active=A)
    assert gp.checks_due(GROUP, state, 0, 10) == [B, C]
    state = gp.checked(state, B, True, now=0, delay=5)
    state = gp.checked(state, C, False, now=0, delay=40)
    assert gp.checks_due(GROUP, state, 9, 10) == []
    assert gp.checks_due(GROUP, state, 10, 10) == [B]
    assert gp.checks_due(GROUP, state, 40, 10) == [B, C]
    assert state.member(C).failures == 1 and state.member(C).health == gp.DEAD


def test_moved_records_the_failover_and_never_names_two_actives():
    state = gp.moved(gp.GroupState(active=A), B, "A dead", wall=1e9)
    assert state.active == B
    assert state.last_failover == gp.Failover(A, B, "A dead", 1e9)


def test_every_sequence_of_moves_keeps_one_holder():
    current = {k: (*OWN[k], *GROUP.allowed_ips) for k in OWN}  # a mess to start from
    for active in itertools.islice(itertools.cycle([C, A, B, B, A]), 12):
        current = apply_wg_set(current, gp.plan(GROUP, active, current))
        assert gp.holders(GROUP, current) == [active]


def test_a_member_that_handshook_on_its_own_is_alive_a_dead_one_needs_a_newer_handshake():
    wall = 10_000.0
    fresh, old = wall - 30, wall - 200
    assert gp.handshook(gp.Member(), fresh, wall)
    assert not gp.handshook(gp.Member(), old, wall)  # no session any more
    assert not gp.handshook(gp.Member(), None, wall)
    dead = gp.Member(gp.DEAD, latest_handshake=fresh)
    assert not gp.handshook(dead, fresh, wall)  # the handshake from before it died
    assert gp.handshook(dead, fresh + 20, wall)  # a new one: it is back
