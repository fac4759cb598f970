"""Events from state changes, their hook environment and the bounded history. Pure."""

import dataclasses

import pytest

from wg_endpointd.core import events as ev
from wg_endpointd.core import policy
from wg_endpointd.core import state as st
from wg_endpointd.core.model import Endpoint, ProbeResult
from wg_endpointd.core.specs import PeerConfig

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUI="
V6 = Endpoint("2001:db8:1::2", 51820)
V4 = Endpoint("192.0.2.2", 51820)
PEER = PeerConfig("wg0", K1, "@wireguard_wg0[0]", description="office")


def healthy(endpoint=V6, **kw):
    return st.PeerState(phase=st.HEALTHY, endpoint=endpoint, **kw)


def test_the_reasons_of_a_switch_are_the_words_policy_and_failback_give():
    dead = policy.decide(V6, False, [V6, V4], {V6.address: ProbeResult(V6.address, None)}, 6)
    unknown = policy.decide(V6, False, [V6, V4], {}, 6, unknown=True)
    none = policy.decide(None, False, [V4], {}, 4)
    reapply = policy.reapply(dead, V4, "wg0", {})
    for decision, word in ((dead, "failover"), (unknown, "recheck"), (none, "failover"),
                           (reapply, "reapply")):
        assert isinstance(decision, policy.Try)
        assert ev.switch_reason(f"verified in 0.42 s; {decision.reason}") == word
    assert ev.switch_reason("verified in 1.00 s; failback") == "failback"
    assert ev.switch_reason("verified in 1.00 s; standby check") == "recheck"
    assert ev.switch_reason("something new") == "other"
    assert set(ev.SWITCH_REASONS) >= {"failover", "failback", "reapply", "recheck", "external"}


def test_a_verified_switch_is_one_event_with_its_reason_and_duration():
    old = healthy()
    new = dataclasses.replace(old, phase=st.FALLBACK, endpoint=V4, last_switch=st.Switch(
        V6, V4, "verified in 0.52 s; [2001:db8:1::2]:51820 not answering", 1000.0))
    [e] = ev.peer_events(PEER, old, new, 1001.0, took=0.52)
    assert e == ev.Event(1000.0, "switch", "wg0", K1, "office", "[2001:db8:1::2]:51820",
                         "192.0.2.2:51820", "failover", 0.52)
    assert ev.peer_events(PEER, new, new, 1002.0) == []  # nothing new


def test_an_endpoint_moved_outside_the_daemon_is_an_external_switch():
    [e] = ev.peer_events(PEER, healthy(V6), healthy(V4), 1000.0)
    assert (e.action, e.from_, e.to, e.reason, e.took) == (
        "switch", "[2001:db8:1::2]:51820", "192.0.2.2:51820", "external", None)
    assert ev.peer_events(PEER, st.PeerState(), healthy(V4), 1000.0) == []  # first sight


def test_down_and_up():
    old = healthy()
    down = dataclasses.replace(old, phase=st.DOWN, fault="no candidate verified")
    [e] = ev.peer_events(PEER, old, down, 1000.0)
    assert (e.action, e.reason, e.from_, e.to) == ("down", "unreachable", str(V6), str(V6))
    [e] = ev.peer_events(PEER, old, down, 1000.0, failed=False)
    assert e.reason == "error"
    assert ev.peer_events(PEER, down, down, 1010.0) == []  # still down: no new event
    assert [e.action for e in ev.peer_events(PEER, st.PeerState(), down, 5.0)] == ["down"]
    [up] = ev.peer_events(PEER, down, healthy(), 1090.0, down_at=1000.0)
    assert (up.action, up.reason, up.took) == ("up", "recovered", 90.0)
    assert ev.peer_events(PEER, st.PeerState(), healthy(), 5.0) == []  # a start is no "up"


def test_a_switch_that_brings_a_peer_back_is_the_switch_then_up():
    down = dataclasses.replace(healthy(), phase=st.DOWN)
    new = dataclasses.replace(healthy(V4), phase=st.FALLBACK, last_switch=st.Switch(
        V6, V4, "verified in 0.3 s; [2001:db8:1::2]:51820 not answering", 1200.0))
    events = ev.peer_events(PEER, down, new, 1200.0, took=0.3, down_at=1000.0)
    assert [(e.action, e.reason, e.took) for e in events] == [
        ("switch", "failover", 0.3), ("up", "failover", 200.0)]


def test_group_events_name_members_by_public_key():
    e = ev.group_event("vpn", "wg0", K1, K2, False, "standby", 1000.0, 1.25)
    assert (e.action, e.public_key, e.description, e.from_, e.to, e.reason, e.group) == (
        "failover", K2, "standby", K1, K2, "dead", "vpn")
    back = ev.group_event("vpn", "wg0", K2, K1, True, "preferred", 2000.0)
    assert (back.action, back.reason, back.took) == ("failback", "recovered", None)


def test_hook_env_holds_the_documented_facts_only():
    e = ev.Event(1.0, "switch", "wg0", K1, "office", "[2001:db8:1::2]:51820",
                 "192.0.2.2:51820", "failover", 0.5)
    assert ev.hook_env(e) == {
        "ACTION": "switch", "INTERFACE": "wg0", "PUBLIC_KEY": K1, "DESCRIPTION": "office",
        "FROM": "[2001:db8:1::2]:51820", "TO": "192.0.2.2:51820", "REASON": "failover"}
    g = ev.hook_env(ev.group_event("vpn", "wg0", K1, K2, True, "", 1.0))
    assert g["GROUP"] == "vpn" and (g["FROM"], g["TO"], g["PUBLIC_KEY"]) == (K1, K2, K2)
    assert set(g) == {"ACTION", "INTERFACE", "PUBLIC_KEY", "DESCRIPTION", "FROM", "TO",
                      "REASON", "GROUP"}
    assert all(isinstance(v, str) for v in g.values())


def test_history_is_bounded_oldest_first():
    history: list = []
    for i in range(25):
        history = ev.remember(history, ev.entry(ev.Event(float(i), "down", "wg0", K1, "",
                                                         "", "", "unreachable")))
    assert len(history) == ev.HISTORY == 20
    assert [h["at"] for h in history] == [float(i) for i in range(5, 25)]
    assert history[0] == {"at": 5.0, "action": "down", "from": None, "to": None,
                          "reason": "unreachable", "took": None}
    assert ev.last_at(history, "down") == 24.0 and ev.last_at(history, "up") is None


@pytest.mark.parametrize("item", [None, 3, {"action": "reboot", "at": 1.0},
                                  {"action": "up"}, {"action": "up", "at": "x"},
                                  {"action": "up", "at": float("nan")},
                                  {"action": "up", "at": True}])
def test_a_restored_history_drops_what_is_not_an_event(item):
    good = {"at": 1.0, "action": "up", "from": "192.0.2.2:51820", "to": None,
            "reason": "recovered", "took": 3.5}
    assert ev.restored([item, good]) == [good]


def test_a_restored_history_keeps_known_fields_and_the_last_20():
    items = [{"at": i, "action": "switch", "from": 7, "reason": "failover", "took": "slow",
              "private_key": "x"} for i in range(30)]
    out = ev.restored(items)
    assert len(out) == 20 and out[0]["at"] == 10
    assert out[0] == {"at": 10, "action": "switch", "from": None, "to": None,
                      "reason": "failover", "took": None}
    assert ev.restored("junk") == []
