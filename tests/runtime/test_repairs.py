"""Repairs beside the loop (issue 18): no peer holds up another."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading

import pytest

from tests.fakes import FakeProber, FakeWg
from tests.runtime.test_daemon import V4, V6, make, phase
from tests.runtime.test_engine import K1, dump, engine, peer, tried
from wg_endpointd.config import HostSpec
from wg_endpointd.core import state as st
from wg_endpointd.core.model import Endpoint
from wg_endpointd.core.outcome import Outcome
from wg_endpointd.runtime import verify
from wg_endpointd.runtime.repairs import Repairs, in_thread

A, B = ("wg0", "a"), ("wg1", "b")


class Deferred:
    """A spawn that keeps the work until the test runs it."""

    def __init__(self) -> None:
        self.held: list = []

    def __call__(self, fn) -> None:
        self.held.append(fn)

    def run_all(self) -> None:
        held, self.held = self.held, []
        for fn in held:
            fn()


def out_for(ident, status="healthy"):
    p = peer(key=ident[1], iface=ident[0])
    return Outcome(p, status, V6, "test")


def test_peers_are_busy_until_their_repair_ends_and_then_reported():
    spawn, pokes = Deferred(), []
    r = Repairs(spawn, lambda: pokes.append(1))
    r.start("repair", [A, B], lambda early: [out_for(A), out_for(B, "failed")])
    assert r.busy() == {A, B} and r.running()
    with pytest.raises(ValueError):
        r.start("repair", [A], lambda early: [])
    assert r.take() == ([], [])
    spawn.run_all()
    early, [fin] = r.take()
    assert early == [] and fin.kind == "repair" and fin.peers == {A, B}
    assert [o.status for o in fin.outcomes] == ["healthy", "failed"]
    assert r.busy() == set() and pokes


def test_a_peer_verified_early_is_free_while_the_others_still_try():
    spawn = Deferred()
    r = Repairs(spawn)
    seen = []

    def work(early):
        early(out_for(A))
        seen.append(r.busy())  # A is free, B still tries
        return [out_for(A), out_for(B, "failed")]

    r.start("full", [A, B], work)
    spawn.run_all()
    assert seen == [{B}]
    early, [fin] = r.take()
    assert [o.peer.public_key for o in early] == ["a"] and fin.early == {A}


def test_a_new_repair_of_a_freed_peer_is_not_ended_by_the_old_one():
    spawn = Deferred()
    r = Repairs(spawn)
    gate: list = []

    def slow(early):
        early(out_for(A))
        r.start("repair", [A], lambda e: [out_for(A)])  # A again, while B's part goes on
        gate.append(r.busy())
        return [out_for(B, "failed")]

    r.start("full", [A, B], slow)
    spawn.held.pop(0)()
    assert gate == [{A, B}]
    assert r.busy() == {A}  # the old repair ended B's part only
    spawn.run_all()
    assert r.busy() == set()


def test_a_fault_inside_a_repair_frees_its_peers_and_is_logged(caplog):
    r = Repairs()

    def boom(early):
        raise RuntimeError("surprise")

    with caplog.at_level(logging.ERROR):
        r.start("repair", [A], boom)
    _, [fin] = r.take()
    assert fin.failed and fin.outcomes == [] and r.busy() == set()
    assert "unexpected error in a repair" in caplog.text


def test_stop_waits_for_threads_that_end_by_themselves():
    go = threading.Event()
    r = Repairs(in_thread)
    r.start("repair", [A], lambda early: go.wait(5) and [out_for(A)])
    assert not r.wait_idle(0.05)  # still running
    go.set()
    assert r.wait_idle(5)
    _, [fin] = r.take()
    assert [o.status for o in fin.outcomes] == ["healthy"]


def test_the_loop_serves_events_and_signals_while_a_repair_runs(tmp_path):
    """The start round is held; steps go on, an event starts no second round for the
    busy peer, SIGTERM is seen at once; when the round ends its outcome is applied, the
    peer is looked at straight away and gets the round the event owed it."""
    d, wg, clock, _ = make(tmp_path)
    spawn = Deferred()
    d.repairs = Repairs(spawn)
    delay = d.step()
    assert len(spawn.held) == 1 and d.repairs.busy() == {("wg0", K1)}
    assert phase(d) == st.UNKNOWN and delay > 0
    d.on_signal(signal.SIGUSR1)
    d.step()  # the event is served: nothing more to start for a peer under repair
    assert len(spawn.held) == 1 and not d.wake
    spawn.run_all()
    d.step()
    assert phase(d) == st.HEALTHY
    # the event came while the round ran: the peer is owed a round of its own, now
    assert len(spawn.held) == 1 and d.repairs.busy() == {("wg0", K1)}
    spawn.run_all()
    d.step()
    assert d.repairs.busy() == set() and not spawn.held and not d.owed
    assert d.next_check <= clock.now + 0.2  # checks passed it by: it is looked at now
    d.on_signal(signal.SIGTERM)
    assert d.stop


def test_a_repair_beside_the_loop_does_not_delay_the_other_peers_event_round(tmp_path):
    d, wg, clock, _ = make(tmp_path)
    d.step()  # start round, at once
    assert phase(d) == st.HEALTHY
    spawn = Deferred()
    d.repairs = Repairs(spawn)
    wg.working.discard(V6)
    d.on_signal(signal.SIGUSR1)
    d.step()
    [held] = spawn.held
    held()  # the round's work runs (in the daemon: a thread) ...
    d.step()  # ... and the loop applies it at its next pass
    assert phase(d) == st.FALLBACK and d._state(d.peers[0]).endpoint == V4


def test_a_peers_tries_end_at_its_round_budget():
    many = {"peer.wg.test": [f"198.51.100.{i}" for i in range(1, 51)]}
    wg = FakeWg({"wg0": {K1: dump(endpoint=Endpoint("198.51.100.1", 51820), handshake=0,
                                  rx=0)}}, working=set())
    eng, clock = engine(wg, FakeProber({}), table=many)
    [out] = eng.round([peer(verify_timeout=3.0)])
    # 3 s waits: the third ends at 9 s, past the 8 s budget; the fourth waits a round
    assert len(tried(wg)) == 3 + 1  # three tries, then the original put back
    assert out.status == "failed" and "1 left for later rounds" in out.detail
    assert clock.now - 1000 <= verify.BUDGET + 3.0 + 0.5


def test_early_outcomes_come_before_the_slow_peers_tries_end():
    slow = peer(key="B" * 43 + "=", iface="wg1")
    many = {"peer.wg.test": ["2001:db8:1::2", "192.0.2.2"],
            "slow.wg.test": [f"198.51.100.{i}" for i in range(1, 51)]}
    wg = FakeWg({"wg0": {K1: dump(handshake=0, rx=0)},
                 "wg1": {slow.public_key: dump(key=slow.public_key,
                                               endpoint=Endpoint("198.51.100.1", 51820),
                                               handshake=0, rx=0)}}, working={V4})
    eng, clock = engine(wg, FakeProber({}), table=many)
    slow = dataclasses.replace(slow, endpoint_host="slow.wg.test",
                               hosts=(HostSpec("slow.wg.test", 51820),), verify_timeout=2.0)
    heard: list[tuple[str, float]] = []
    outs = eng.round([peer(), slow], early=lambda o: heard.append((o.status, clock.now)))
    assert heard and heard[0][0] == "switched" and heard[0][1] - 1000 < 1.5
    assert {o.status for o in outs} == {"switched", "failed"}
    assert clock.now - 1000 > 6  # the slow peer's tries went on after
