"""Test datagrams and reads (liveness.py): pure rules, then the daemon's loop with an
injected clock, for a peer that answers at once and one that answers only by keepalive."""

import dataclasses
import logging
import statistics

import pytest

from tests.fakes import FakeClock
from tests.runtime.test_daemon import K1, V4, V6, make, phase, run_for
from wg_endpointd.core import liveness as lv
from wg_endpointd.core import state as st
from wg_endpointd.core.model import Endpoint, PeerDump

EP = Endpoint("192.0.2.1", 51820)


def dump(rx: int) -> PeerDump:
    return PeerDump("k", EP, (), 1, rx, 0, None)


def test_a_test_datagram_is_answered_fast_or_by_keepalive():
    s = st.observe(st.PeerState(), dump(100), 0.0)
    s = lv.kicked(s, 10.0)
    assert lv.answer_wait(s) == lv.KEEPALIVE_WAIT  # nothing learned yet
    assert lv.next_look(s, 10.0) == 10.1
    assert lv.next_look(st.observe(s, dump(100), 10.1), 10.1) == 10.5
    s = st.observe(s, dump(164), 10.5)  # answered by the second look
    assert s.kick_rx == -1 and s.answer_delay == 0.5 and lv.prompt(s)
    assert abs(lv.answer_wait(s) - 1.8) < 1e-9
    s = lv.kicked(s, 20.0)
    assert lv.next_look(s, 20.0) == pytest.approx(21.8 - lv.SLACK)  # learned: no first look
    s = st.observe(s, dump(164), 20.5)
    assert not lv.unanswered(s, 21.0) and lv.unanswered(s, 21.8)
    assert lv.next_look(s, 22.0) is None
    assert lv.next_look(s, 20.6, next_read=23.0) == 23.0  # judged with the others at the read
    assert lv.next_look(s, 20.6, next_read=21.0) == pytest.approx(21.8 - lv.SLACK)
    # the read came just before the verdict: the next read is a cycle away, never waited for
    assert lv.next_look(s, 21.7, next_read=31.7) == pytest.approx(21.8 - lv.SLACK)


def test_a_later_look_does_not_make_a_prompt_peer_look_slow():
    s = st.observe(st.PeerState(answer_delay=0.5), dump(100), 0.0)
    s = st.observe(lv.kicked(s, 10.0), dump(164), 11.8)  # seen only at the verdict read
    assert s.answer_delay == 0.5


def test_how_fast_a_peer_answers_is_learned_from_an_answer_alone_never_from_traffic():
    s = st.observe(st.PeerState(), dump(100), 0.0)
    s = st.observe(lv.kicked(s, 0.0), dump(132), 11.0)  # the passive keepalive
    assert s.answer_delay == 11.0 and not lv.prompt(s)
    busy = st.observe(lv.kicked(st.observe(st.PeerState(), dump(100), 0.0), 1.0),
                      dump(5000), 1.1)  # far more than an answer: the user's traffic
    assert busy.kick_rx == -1 and busy.answer_delay is None  # alive, nothing learned


def test_judged_peer_is_learned_afresh():
    s = lv.judged(lv.kicked(st.PeerState(rx_bytes=5, answer_delay=0.2), 1.0))
    assert s.kick_rx == -1 and s.answer_delay is None


def test_plan_times_datagrams_onto_the_next_read():
    prompt = st.PeerState(rx_bytes=1, answer_delay=0.5, last_kick=0.0)
    keepalive = st.PeerState(rx_bytes=1, answer_delay=11.0, last_kick=0.0)
    fresh = st.PeerState(rx_bytes=1)
    assert lv.plan_kick(fresh, 11.0, 22.0, 10.0) == 11.0  # at once, to learn
    assert lv.plan_kick(keepalive, 11.0, 22.0, 10.0) == 11.0  # its verdict is the next read
    assert lv.plan_kick(prompt, 11.0, 22.0, 10.0) == pytest.approx(22.0 - 1.8)
    assert lv.plan_kick(keepalive, 5.0, 16.0, 10.0) == 10.0  # one per interval at most
    assert lv.plan_kick(lv.kicked(prompt, 11.0), 11.0, 22.0, 10.0) is None  # one pending
    # traffic is no reason to skip a test: it proves only the past
    assert lv.plan_kick(prompt, 11.0, 22.0, 10.0) is not None


def test_next_read_waits_a_little_for_a_keepalive_verdict():
    assert lv.next_cycle(0.0, 10.0, [11.0 - lv.SLACK, 3.0]) == 11.0 - lv.SLACK
    assert lv.next_cycle(0.0, 10.0, [15.0]) == 10.0  # too far: its own read
    assert lv.next_cycle(0.0, 1.0, [11.0]) == 1.0


def test_a_down_peers_verdict_does_not_stretch_the_others_cycle():
    """Issue 18: a peer that is down (50 dead addresses, say) waits for its backoff; its
    keepalive-long verdicts must not push every other peer's read back by up to 2 s."""
    pending = lv.kicked(st.PeerState(phase=st.HEALTHY, rx_bytes=10), 0.0)
    down = dataclasses.replace(pending, phase=st.DOWN)
    assert lv.merged([pending]) == [lv.verdict_at(pending)]
    assert lv.merged([down]) == []
    assert lv.next_cycle(0.0, 10.0, lv.merged([down])) == 10.0


def test_prompt_peers_datagrams_go_out_together():
    """Prompt peers with different answer delays share one send time (one wake-up)."""
    fast = dataclasses.replace(st.PeerState(), answer_delay=0.01, last_kick=0.0)
    slow = dataclasses.replace(st.PeerState(), answer_delay=0.5, last_kick=0.0)
    ahead = lv.lead([fast, slow])
    assert ahead == lv.answer_wait(slow) > lv.answer_wait(fast)
    assert lv.plan_kick(fast, 5.0, 20.0, 10.0, ahead) == lv.plan_kick(slow, 5.0, 20.0, 10.0,
                                                                      ahead) == 20.0 - ahead
    assert lv.lead([st.PeerState()]) == 0.0  # no prompt peer: nothing to share


def keepalive_only(tmp_path):
    d, wg, clock, _ = make(tmp_path)  # defaults: check_interval 10, dead_after 30
    wg.keepalive_clock = clock
    return d, wg, clock


def until_moved(d, wg, clock: FakeClock, limit: float = 60.0) -> float:
    start = clock.now
    for _ in range(20_000):
        delay = d.step()
        if wg.ifaces["wg0"][K1].endpoint == V4 and wg.ifaces["wg0"][K1].latest_handshake:
            return clock.now - start
        assert clock.now - start < limit, "not moved"
        clock.sleep(max(delay, 0.01))
    raise AssertionError("loop did not advance")


@pytest.mark.parametrize("make_peer", ["prompt", "keepalive"])
def test_silent_death_at_any_moment_is_found_within_one_cycle(tmp_path, make_peer, caplog):
    """A datagram is always out whose answer a dying path loses: found within one wait of
    the peer's kind, plus the repair, wherever in the cycle the path dies."""
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    took = []
    for i, offset in enumerate(x * 1.1 for x in range(10)):
        d, wg, clock, _ = make(tmp_path / str(i))
        if make_peer == "keepalive":
            wg.keepalive_clock = clock
        run_for(d, clock, 60)
        died = clock.now + offset
        for _ in range(1000):  # to the moment of death, wherever it falls between wakes
            if clock.now >= died:
                break
            clock.sleep(min(max(d.step(), 0.01), died - clock.now))
        wg.working.discard(V6)
        took.append(until_moved(d, wg, clock))
        assert "no answer to a test datagram" in caplog.text
    wait = 11 if make_peer == "keepalive" else 10 + 1.8  # keepalive wait; interval + wait
    assert max(took) <= wait + 1.5, took  # + the repair's verification
    assert statistics.median(took) <= wait / 2 + 2.5, took


@pytest.mark.parametrize("make_peer", ["prompt", "keepalive"])
def test_an_idle_hour_costs_one_read_per_cycle_and_one_datagram_per_interval(
        tmp_path, make_peer):
    d, wg, clock, _ = make(tmp_path)
    if make_peer == "keepalive":
        wg.keepalive_clock = clock
    kicks = []
    orig = wg.kick
    d.engine.kick = lambda i, a: kicks.append(clock.now) or orig(i, a)
    run_for(d, clock, 60)
    shows, sent, resets = wg.shows, len(kicks), len(wg.resets)
    run_for(d, clock, 3600, limit=50_000)  # scheduled rounds too: they trust the checks
    assert len(wg.resets) == resets and d._state(d.peers[0]).phase == st.HEALTHY
    rounds = 3600 / 300  # a scheduled round (resolve_interval) reads, and so does the next look
    if make_peer == "keepalive":  # one read per cycle, which its verdict stretches to 11 s
        assert wg.shows - shows <= 3600 / 10.95 + rounds + 2
    else:  # the answers show in the interface's own counters: no other `wg show`
        assert wg.shows - shows <= 2 * rounds + 2
    gaps = [b - a for a, b in zip(kicks[sent:], kicks[sent + 1:], strict=False)]
    assert min(gaps) >= 10 - 1e-6 and len(kicks) - sent <= 3600 / 10 + 1


def test_traffic_spares_no_test_datagram_and_costs_no_read(tmp_path):
    """Issue 17: traffic must not hide a death, so a peer with traffic is tested each
    cycle too; a peer alone on its interface is still judged by the interface's counters."""
    d, wg, clock, _ = make(tmp_path)
    kicks = []
    orig = wg.kick
    d.engine.kick = lambda i, a: kicks.append(clock.now) or orig(i, a)
    run_for(d, clock, 60)
    sent, shows, start = len(kicks), wg.shows, clock.now
    for _ in range(60):  # the peer's own packets keep coming in
        wg.receive("wg0", K1, 3)
        run_for(d, clock, 5)
    cycles = (clock.now - start) / 10
    assert cycles - 2 <= len(kicks) - sent <= cycles + 1  # one per cycle
    rounds = (clock.now - start) / 300
    assert wg.shows - shows <= 2 * rounds + 2  # a scheduled round and the look after it
    assert d._state(d.peers[0]).phase == st.HEALTHY


def test_a_death_under_traffic_is_found_as_fast_as_an_idle_one(tmp_path, caplog):
    """Issue 17: the peer's traffic came in every half second until its path died (a ping
    running through the tunnel); the death is found by the next test, not by dead_after."""
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    took = []
    for i, offset in enumerate(x * 1.1 for x in range(10)):
        d, wg, clock, _ = make(tmp_path / str(i))
        run_for(d, clock, 60)
        died = clock.now + 10 + offset
        for _ in range(1000):  # traffic up to the moment of death
            if clock.now >= died:
                break
            wg.receive("wg0", K1, 1)
            clock.sleep(min(max(min(d.step(), 0.5), 0.01), died - clock.now))
        wg.working.discard(V6)
        took.append(until_moved(d, wg, clock))
        assert "no answer to a test datagram" in caplog.text
    assert max(took) <= 10 + 1.8 + 1.5, took  # interval + the prompt wait + the repair
    assert statistics.median(took) <= 10 / 2 + 2.5, took


def test_a_peer_sharing_its_interface_is_read_every_cycle(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    other = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcd="
    wg.ifaces["wg0"][other] = PeerDump(other, V4, ("198.51.100.77/32",), 1, 0, 0, None)
    run_for(d, clock, 60)
    shows = wg.shows
    run_for(d, clock, 100)  # its packets would hide the managed peer's silence
    assert wg.shows - shows >= 100 / 10 - 1


def test_a_test_unanswered_in_the_counters_is_a_death_without_a_read(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wg_endpointd")
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 60)
    shows, at_repair = wg.shows, []
    orig = d.engine.round
    d.engine.round = lambda *a, **k: at_repair.append(wg.shows) or orig(*a, **k)
    wg.working.discard(V6)
    took = until_moved(d, wg, clock)
    assert took <= 10 + 1.5 and "no answer to a test datagram within 0.6 s" in caplog.text
    assert at_repair == [shows]  # found by the interface counters; the repair reads


def test_a_peer_added_to_the_interface_is_noticed_by_the_next_round(tmp_path):
    """Counters judge a peer only while it has its interface to itself; every round makes
    the next look read `wg show` again, which sees a peer added since."""
    d, wg, clock, _ = make(tmp_path)
    run_for(d, clock, 60)
    other = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcd="
    wg.ifaces["wg0"][other] = PeerDump(other, V4, ("198.51.100.77/32",), 1, 0, 0, None)
    run_for(d, clock, 300)  # holds the scheduled round (resolve_interval)
    shows = wg.shows
    run_for(d, clock, 100)
    assert wg.shows - shows >= 100 / 10 - 1  # read every cycle now


def test_an_inner_reply_heard_on_the_socket_is_learned_whatever_the_traffic(tmp_path):
    """Issue 17: the tunnel carries the user's ping from the start, so the counters never
    show an answer alone; the far stack's port unreachable, heard on the sending socket
    (tunnel.TunnelSender.answers), still tells that the peer answers at once."""
    d, wg, clock, _ = make(tmp_path)
    heard: dict[tuple[str, str], float] = {}
    orig = wg.kick

    def kick(iface, address):
        if wg.ifaces[iface][K1].endpoint in wg.working:
            heard[(iface, address)] = clock.now + 0.003
        return orig(iface, address)

    def answers():
        out = {k: t for k, t in heard.items() if t <= clock.now}
        for k in out:
            del heard[k]
        return out

    d.engine.kick, d.engine.answers = kick, answers
    for _ in range(200):  # traffic from the very start, every half second
        wg.receive("wg0", K1, 2)
        clock.sleep(max(min(d.step(), 0.5), 0.01))
    state = d._state(d.peers[0])
    assert state.answer_delay is not None and lv.prompt(state), state
    died = clock.now
    wg.working.discard(V6)
    for _ in range(2000):
        clock.sleep(max(min(d.step(), 0.5), 0.01))
        if wg.ifaces["wg0"][K1].endpoint == V4:
            break
    assert wg.ifaces["wg0"][K1].endpoint == V4 and clock.now - died <= 10 + 1.8 + 1.5


def test_packets_out_with_nothing_back_are_a_reason_to_test_at_once():
    """Issue 17: a ping through a dead tunnel: tx grows, rx does not."""
    f, s = lv.sample(lv.Flow(), 90, 90, -10.0)
    f, s = lv.sample(f, 100, 100, 0.0)  # a cycle later: ten pings out, ten answers in
    assert not s and lv.next_sample(f, 0.0) == lv.SAMPLE  # traffic: looked at each second
    for t in range(1, 4):  # alive: each ping answered
        f, s = lv.sample(f, 100 + t, 100 + t, float(t))
        assert not s
    f, s = lv.sample(f, 104, 103, 4.0)  # the path died: one out, nothing in
    assert not s
    f, s = lv.sample(f, 105, 103, 5.0)  # two out within SPREAD, the first PATIENCE ago
    assert s
    f, s = lv.sample(f, 106, 103, 6.0)  # once per run of unanswered traffic
    assert not s
    assert lv.next_sample(f, 6.0) == 6.0 + lv.SAMPLE  # traffic flows: look again soon


def test_keepalives_alone_and_counter_restarts_are_no_reason():
    f, _ = lv.sample(lv.Flow(), 10, 10, 0.0)
    for t in (5.0, 10.0, 15.0, 20.0):  # one packet out every 5 s (a keepalive), none in
        f, s = lv.sample(f, f.tx + 1, 10, t)
        assert not s
    f, s = lv.sample(f, 0, 0, 21.0)  # the interface was re-created
    assert not s and f == lv.Flow(0, 0, 0)
    assert lv.next_sample(lv.Flow(5, 5, 5), 100.0) is None  # idle: the cycle's wake-ups look
    f, _ = lv.sample(lv.Flow(5, 5, 5), 7, 5, 110.0)  # stray packets in a cycle: no traffic
    assert lv.next_sample(f, 110.0) is None
    f, _ = lv.sample(f, 10, 8, 120.0)  # a few out in a cycle: traffic, looked at each second
    assert lv.next_sample(f, 120.0) == 120.0 + lv.SAMPLE


def death_under_traffic(tmp_path, settle: float, traffic_for: float) -> float:
    """The loop with a scripted interface: `settle` seconds idle, then a ping a second
    for `traffic_for` seconds, answered, then the path dies; seconds until the peer is
    on its other endpoint."""
    d, wg, clock, _ = make(tmp_path)
    counts = {"tx": 1000, "rx": 1000}
    # the kernel counts the daemon's own test datagrams too
    d.tester.packets = lambda: {"wg0": (counts["rx"], counts["tx"] + d.tester.own_out.get("wg0", 0))}
    if settle:
        run_for(d, clock, settle)
        assert phase(d) == st.HEALTHY
    alive = True

    def traffic() -> None:  # a ping a second, answered while the path lives
        counts["tx"] += 1
        counts["rx"] += 1 if alive else 0

    next_ping = start = clock.now
    for _ in range(400):  # traffic for a cycle and a bit, answered
        if clock.now >= next_ping:
            traffic()
            next_ping += 1.0
        clock.sleep(min(max(d.step(), 0.01), max(next_ping - clock.now, 0.01)))
        if clock.now >= start + traffic_for:
            break
    died, alive = clock.now, False
    wg.working.discard(V6)
    for _ in range(2000):
        if clock.now >= next_ping:
            traffic()
            next_ping += 1.0
        clock.sleep(min(max(d.step(), 0.01), max(next_ping - clock.now, 0.01)))
        if d._state(d.peers[0]).endpoint == V4:
            break
    assert d._state(d.peers[0]).endpoint == V4
    return clock.now - died


def test_a_dead_tunnel_under_traffic_is_tested_at_once_and_found_within_seconds(tmp_path):
    """The peer's test goes out as soon as traffic gets no answer, not at the next cycle."""
    took = death_under_traffic(tmp_path, 35, 13.0)
    assert took < 4.5, took  # at the next cycle it would be up to 10 s and more


def test_traffic_from_the_start_is_watched_from_the_first_cycle(tmp_path):
    """The counters' first look comes with the first check, not a cycle later: traffic
    that flows from the start is known as traffic at the next cycle's read, so a death
    13 s in is found within seconds (before, the watch started at the second read)."""
    took = death_under_traffic(tmp_path, 0, 13.0)
    assert took < 4.5, took
