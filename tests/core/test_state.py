from wg_endpointd.core import state as st
from wg_endpointd.core.model import Endpoint, PeerDump

EP = Endpoint("192.0.2.2", 51820)


def dump(rx=0, hs=0):
    return PeerDump("k", EP, (), hs, rx, 0, None)


def test_first_sight_starts_the_window():
    s = st.observe(st.PeerState(), dump(100, 5), now=10.0)
    assert s.last_alive == 10.0 and s.rx_bytes == 100 and s.last_check == 10.0


def test_life_is_dated_to_the_previous_check():
    s = st.observe(st.PeerState(), dump(100), 10.0)
    s = st.observe(s, dump(100), 15.0)
    assert s.last_alive == 10.0
    s = st.observe(s, dump(164), 20.0)
    assert s.last_alive == 15.0  # lower bound: the bytes came after the check at 15
    s = st.observe(s, dump(164, hs=7), 25.0)
    assert s.last_alive == 20.0


def test_dead_after_window():
    s = st.PeerState(last_alive=0.0)
    assert not st.is_dead(s, 29.9, 30.0) and st.is_dead(s, 30.0, 30.0)
    assert not st.is_dead(st.PeerState(), 100.0, 30.0)


def test_backoff_doubles_with_jitter_and_cap():
    assert st.backoff(1, 10, 300, 0.5) == 10
    assert st.backoff(2, 10, 300, 0.5) == 20
    assert st.backoff(3, 10, 300, 0.0) == 40 * 0.8
    assert st.backoff(3, 10, 300, 0.999) < 40 * 1.2
    assert st.backoff(20, 10, 300, 0.5) == 300


def test_failure_and_verification_cycle():
    s = st.repair_failed(st.PeerState(), now=100.0, delay=20.0)
    s = st.repair_failed(s, now=120.0, delay=40.0)
    assert s.phase == st.DOWN and s.failures == 2 and s.next_repair == 160.0
    s = st.verified(s, EP, now=130.0, wall=1e9, phase=st.HEALTHY)
    assert s.failures == 0 and s.next_repair == 0 and s.last_alive == 130.0 and s.endpoint == EP


def test_failback_hold_and_doubling():
    s = st.note_better(st.PeerState(), True, 0.0)
    s = st.note_better(s, True, 100.0)
    assert s.better_since == 0.0
    assert not st.failback_due(s, 299.0, 300.0) and st.failback_due(s, 300.0, 300.0)
    assert st.note_better(s, False, 150.0).better_since is None  # a break restarts the hold
    s = st.failback_failed(s, 300.0, 300.0)
    assert s.hold == 600.0 and s.better_since is None
    s = st.note_better(s, True, 1000.0)
    assert not st.failback_due(s, 1300.0, 300.0) and st.failback_due(s, 1600.0, 300.0)
    for _ in range(5):
        s = st.failback_failed(s, 300.0, 300.0)
    assert s.hold == 1200.0
