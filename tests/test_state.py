from wg_endpointd import state as st
from wg_endpointd.model import Endpoint, PeerDump

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


def test_kick_at_most_once_per_interval_and_not_when_alive():
    assert st.wants_kick(st.PeerState(last_alive=0.0), 5.0, 10.0)  # once, to learn (rule 6)
    s = st.PeerState(last_alive=0.0, answer_delay=0.1)
    assert not st.wants_kick(s, 5.0, 10.0)
    assert st.wants_kick(s, 10.0, 10.0)
    s = st.PeerState(last_alive=0.0, last_kick=10.0, answer_delay=0.1)
    assert not st.wants_kick(s, 19.9, 10.0)
    assert st.wants_kick(s, 20.0, 10.0)


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


def test_a_test_datagram_is_answered_fast_or_by_keepalive():
    """Rule 6: the answer's speed is learned and sizes the next wait."""
    from wg_endpointd.model import Endpoint, PeerDump

    def dump(rx):
        return PeerDump("k", Endpoint("192.0.2.1", 1), (), 1, rx, 0, None)

    s = st.observe(st.PeerState(), dump(100), 0.0)
    s = st.kicked(s, 10.0)
    assert st.answer_wait(s) == st.KEEPALIVE_WAIT  # nothing learned yet
    assert st.next_look(s, 10.0) == 10.0 + st.FIRST_LOOK
    s = st.observe(s, dump(164), 10.5)  # answered at the first look
    assert s.kick_rx == -1 and s.answer_delay == 0.5
    assert abs(st.answer_wait(s) - 1.8) < 1e-9
    s = st.kicked(s, 20.0)
    s = st.observe(s, dump(164), 20.5)
    assert not st.unanswered(s, 21.0) and st.unanswered(s, 21.8)
    assert st.next_look(s, 20.5) == 21.8 and st.next_look(s, 22.0) is None


def test_keepalive_only_peer_gets_the_keepalive_wait():
    from wg_endpointd.model import PeerDump

    s = st.observe(st.PeerState(), PeerDump("k", None, (), 1, 100, 0, None), 0.0)
    s = st.kicked(s, 10.0)
    s = st.observe(s, PeerDump("k", None, (), 1, 132, 0, None), 19.8)  # passive keepalive
    assert st.answer_wait(s) == st.KEEPALIVE_WAIT
    s = st.kicked(s, 30.0)
    s = st.observe(s, PeerDump("k", None, (), 1, 0, 0, None), 31.0)  # re-created: reset
    assert s.kick_rx == -1 and not st.unanswered(s, 50.0)
